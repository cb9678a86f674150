"""Video domain-specific augmentations (SimCLR-style), batched with per-clip parameters.

Every op takes frames ``[M, T, 3, H, W]`` in [0, 1] and per-clip parameters ``[M]``; one clip's
frames share the parameters (consistent across time), different clips get independent draws.
The formulas are torchvision's (``adjust_brightness`` / ``adjust_contrast`` /
``adjust_saturation`` / ``adjust_hue`` / ``rgb_to_grayscale`` / ``gaussian_blur``), so a
per-clip loop over torchvision gives the same result (tests check it). Colour jitter applies
brightness, contrast, saturation and hue in this fixed order (torchvision draws a random order
per image, which a batched op cannot do without computing every order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avssl.errors import ConfigError

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


# --------------------------------------------------------------------------- sampling
def sample_resized_crop(
    extent: torch.Tensor,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> torch.Tensor:
    """Boxes ``[M, 4]`` ``(x0, y0, w, h)`` as torchvision's ``RandomResizedCrop`` draws them, inside
    each frame's valid ``extent`` ``[M, 2]`` (height, width): area fraction ``U(scale)`` of the
    whole frame, log-uniform aspect ``ratio``, uniform position; boxes that do not fit are clamped
    to the frame (instead of torchvision's retry loop, which would need a Python loop)."""
    m, device = extent.shape[0], extent.device
    height, width = extent.float().unbind(1)
    area = torch.empty(m, device=device).uniform_(scale[0], scale[1], generator=generator) * height * width
    log_r = torch.empty(m, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    r = torch.exp(log_r)
    bw = torch.minimum(torch.sqrt(area * r), width)
    bh = torch.minimum(torch.sqrt(area / r), height)
    x0 = torch.rand(m, generator=generator, device=device) * (width - bw)
    y0 = torch.rand(m, generator=generator, device=device) * (height - bh)
    return torch.stack([x0, y0, bw, bh], 1)


@dataclass(frozen=True)
class ColorConfig:
    """SimCLR colour distortion and blur (defaults: SimCLR's, jitter strength 0.4/0.4/0.4/0.1).

    Args:
        jitter_p: probability of colour jitter per clip.
        brightness: brightness factor drawn in ``[1 - brightness, 1 + brightness]``.
        contrast: contrast factor drawn in ``[1 - contrast, 1 + contrast]``.
        saturation: saturation factor drawn in ``[1 - saturation, 1 + saturation]``.
        hue: shift drawn in ``[-hue, hue]`` (at most 0.5).
        grayscale_p: probability of converting a clip to grayscale.
        blur_p: probability of a Gaussian blur.
        blur_sigma: sigma range in pixels.
        blur_kernel_fraction: kernel size as a fraction of the crop side (SimCLR: 10 %).
    """

    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("jitter_p", "grayscale_p", "blur_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.augment.color.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.augment.color.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ConfigError(f"data.augment.color.hue must be in [0, 0.5], got {self.hue}")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ConfigError(f"data.augment.color.blur_sigma must satisfy 0 < lo <= hi, got {self.blur_sigma}")

    @property
    def active(self) -> bool:
        """Whether any of the ops can fire (all probabilities 0: the frames are left untouched)."""
        return max(self.jitter_p, self.grayscale_p, self.blur_p) > 0

    def sample(self, m: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """Per-clip parameters; identity values where an op is not applied."""

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return torch.empty(m, device=device).uniform_(lo, hi, generator=generator)

        def coin(p: float) -> torch.Tensor:
            return torch.rand(m, generator=generator, device=device) < p

        jitter = coin(self.jitter_p)
        params = {
            "brightness": uniform(1 - self.brightness, 1 + self.brightness),
            "contrast": uniform(1 - self.contrast, 1 + self.contrast),
            "saturation": uniform(1 - self.saturation, 1 + self.saturation),
            "hue": uniform(-self.hue, self.hue),
        }
        params = {k: torch.where(jitter, v, 0.0 if k == "hue" else 1.0) for k, v in params.items()}
        params["grayscale"] = coin(self.grayscale_p)
        params["sigma"] = torch.where(coin(self.blur_p), uniform(*self.blur_sigma), 0.0)
        return params


# --------------------------------------------------------------------------- ops
def _per_clip(x: torch.Tensor) -> torch.Tensor:
    return x.view(-1, 1, 1, 1, 1)


def grayscale(frames: torch.Tensor) -> torch.Tensor:
    """Luma ``[M, T, 1, H, W]`` with torchvision's weights."""
    r, g, b = frames.unbind(2)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(2)


def adjust_brightness(frames: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (frames * _per_clip(factor)).clamp_(0, 1)


def adjust_contrast(frames: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = grayscale(frames).mean(dim=(-3, -2, -1), keepdim=True)  # per frame, as torchvision on [T, 3, H, W]
    f = _per_clip(factor)
    return (f * frames + (1 - f) * mean).clamp_(0, 1)


def adjust_saturation(frames: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _per_clip(factor)
    return (f * frames + (1 - f) * grayscale(frames)).clamp_(0, 1)


def adjust_hue(frames: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` (fraction of a turn) through HSV, as torchvision does."""
    r, g, b = frames.unbind(2)
    maxc = frames.amax(dim=2)
    minc = frames.amin(dim=2)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    cr_divisor = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / cr_divisor, (maxc - g) / cr_divisor, (maxc - b) / cr_divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    h = torch.remainder(h + shift.view(-1, 1, 1, 1), 1.0)
    # HSV -> RGB in closed form: channel n in (5, 3, 1) is v - v*s*clamp(min(k, 4 - k), 0, 1),
    # k = (n + 6h) mod 6 (the same values as torchvision's six-sector table, fewer passes).
    h6 = (h * 6.0).unsqueeze(2)  # [M, T, 1, H, W]
    k = torch.remainder(torch.cat([h6 + 5.0, h6 + 3.0, h6 + 1.0], dim=2), 6.0)  # n in (5, 3, 1): scalars, no copy
    weight = torch.minimum(k, 4.0 - k).clamp_(0, 1)
    v = maxc.unsqueeze(2)
    return v - v * s.unsqueeze(2) * weight


def gaussian_blur(frames: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with a per-clip ``sigma`` (0 = unchanged), reflect padding, as
    torchvision's ``gaussian_blur`` with that kernel size."""
    m, t, c, h, w = frames.shape
    half = (kernel_size - 1) * 0.5
    x = torch.linspace(-half, half, kernel_size, device=frames.device)
    safe = sigma.clamp(min=1e-6)[:, None]
    kernel = torch.exp(-0.5 * (x[None, :] / safe).pow(2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    identity = torch.zeros_like(kernel)
    identity[:, kernel_size // 2] = 1.0
    kernel = torch.where((sigma > 0)[:, None], kernel, identity)  # [M, k]
    weight = kernel.repeat_interleave(t * c, dim=0)  # one kernel per (clip, frame, channel)
    pad = kernel_size // 2
    planes = frames.reshape(1, m * t * c, h, w)
    planes = F.pad(planes, (pad, pad, pad, pad), mode="reflect")
    planes = F.conv2d(planes, weight.view(-1, 1, 1, kernel_size), groups=m * t * c)
    planes = F.conv2d(planes, weight.view(-1, 1, kernel_size, 1), groups=m * t * c)
    return planes.view(m, t, c, h, w)


def color_augment(frames: torch.Tensor, params: dict[str, torch.Tensor], kernel_size: int) -> torch.Tensor:
    """Jitter (brightness, contrast, saturation, hue), grayscale, blur on ``[M, T, 3, H, W]`` in [0, 1]."""
    frames = adjust_brightness(frames, params["brightness"])
    frames = adjust_contrast(frames, params["contrast"])
    frames = adjust_saturation(frames, params["saturation"])
    frames = adjust_hue(frames, params["hue"])
    frames = torch.where(params["grayscale"].view(-1, 1, 1, 1, 1), grayscale(frames).expand_as(frames), frames)
    if kernel_size > 1:
        frames = gaussian_blur(frames, params["sigma"], kernel_size)
    return frames
