"""Distributed helpers on top of torch.distributed (Lightning owns the process group)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all processes along dim 0, with gradients flowing back to each
    process's own slice (``torch.distributed.nn.functional.all_gather``). Identity on one process."""
    if world_size() == 1:
        return x
    return torch.cat(dist_nn.all_gather(x), dim=0)


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@torch.no_grad()
def all_gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all processes along dim 0, without gradient (momentum keys).
    Identity on one process."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)
