"""Loss functions as pure functions of embeddings (SPEC 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent / InfoNCE (paper eq. 1, SimCLR).

    ``z1``, ``z2``: ``[N, D]``; row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair,
    the other ``2N - 2`` embeddings are the negatives of an anchor. Similarities are cosine
    similarities divided by ``temperature``; the loss is the mean over all ``2N`` anchors.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"info_nce expects two [N, D] tensors of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # [2N, D]
    sim = z @ z.t() / temperature  # [2N, 2N]
    sim.fill_diagonal_(float("-inf"))  # k != i
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # partner of each anchor
    return F.cross_entropy(sim, positive)
