"""Video augmentation parameters (random resized crop + flip), sampled with a generator."""

from __future__ import annotations

import math

import torch


def sample_resized_crop(
    m: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Boxes ``[M, 4]`` ``(x0, y0, w, h)`` as torchvision's ``RandomResizedCrop`` draws them:
    area fraction ``U(scale)``, log-uniform aspect ``ratio``; boxes that do not fit are clamped
    to the frame (instead of torchvision's retry loop, which would need a Python loop)."""
    area = torch.empty(m, device=device).uniform_(scale[0], scale[1], generator=generator) * height * width
    log_r = torch.empty(m, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    r = torch.exp(log_r)
    bw = torch.sqrt(area * r).clamp(max=width)
    bh = torch.sqrt(area / r).clamp(max=height)
    x0 = torch.rand(m, generator=generator, device=device) * (width - bw)
    y0 = torch.rand(m, generator=generator, device=device) * (height - bh)
    return torch.stack([x0, y0, bw, bh], 1)


def sample_flip(m: int, p: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(m, generator=generator, device=device) < p
