"""Host-to-device copies that do not stall the host."""

from __future__ import annotations

import torch


def to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``host`` (a CPU tensor) on ``device``: on CUDA through pinned memory with
    ``non_blocking=True``, so the copy is queued behind the device's work instead of waiting for
    it (a copy from pageable memory synchronises the stream first)."""
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)
