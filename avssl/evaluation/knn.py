"""Weighted k-nearest-neighbour classifier on frozen features (cosine similarity; Wu et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_predict(
    query: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    *,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Class probabilities ``[M, K]`` of ``query`` ``[M, D]`` from the ``k`` most cosine-similar rows
    of ``bank`` ``[N, D]``: each neighbour votes for its label with weight ``exp(sim / temperature)``,
    and the votes are normalised to sum to one. Queries are processed in chunks (memory ``chunk x N``).
    """
    if query.dim() != 2 or bank.dim() != 2 or query.shape[1] != bank.shape[1]:
        raise ValueError(f"knn_predict expects [M, D] queries and an [N, D] bank, got {tuple(query.shape)} and {tuple(bank.shape)}")
    if k < 1:
        raise ValueError(f"knn k must be >= 1, got {k}")
    k = min(k, bank.shape[0])
    bank = F.normalize(bank.float(), dim=1)
    out = []
    for chunk in F.normalize(query.float(), dim=1).split(chunk_size):
        sim, idx = (chunk @ bank.t()).topk(k, dim=1)  # [m, k]
        weights = (sim / temperature).exp()
        votes = torch.zeros(chunk.shape[0], num_classes, device=chunk.device).scatter_add_(1, bank_labels[idx], weights)
        out.append(votes / votes.sum(dim=1, keepdim=True))
    return torch.cat(out) if out else query.new_zeros(0, num_classes)
