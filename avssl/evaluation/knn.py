"""Weighted k-nearest-neighbour classifier on frozen features (cosine similarity; Wu et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class KNNHead(nn.Module):
    """The kNN vote scored as a classifier: ``[..., D]`` features -> ``[..., K]`` log vote shares
    (the softmax of which is the vote shares themselves), so a test view's kNN prediction is
    aggregated over views exactly as a linear classifier's logits are. Nothing is trained: the
    bank is set once from the cached training features (:meth:`set_bank`)."""

    def __init__(self, num_classes: int, *, k: int = 20, temperature: float = 0.07):
        super().__init__()
        self.num_classes, self.k, self.temperature = num_classes, k, temperature
        self.bank: torch.Tensor | None = None
        self.bank_labels: torch.Tensor | None = None

    def set_bank(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """The training features ``[N, D]`` and their labels ``[N]`` the test features vote with."""
        self.bank, self.bank_labels = features, labels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.bank is None:
            raise RuntimeError("KNNHead: no bank of training features set (set_bank)")
        flat = features.reshape(-1, features.shape[-1])
        shares = knn_predict(
            flat, self.bank.to(flat.device), self.bank_labels.to(flat.device), self.num_classes, k=self.k, temperature=self.temperature
        )
        return shares.log().view(*features.shape[:-1], self.num_classes)
