"""Multi-view test-time aggregation and exact one-prediction-per-video collection."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torchmetrics.functional.classification import multiclass_accuracy

from avssl.utils.dist import world_size


def mean_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``[B, V, K]`` logits of V views -> ``[B, K]`` mean of the per-view softmax (not the softmax of
    the mean logits: a confident view cannot outvote the others by logit scale alone)."""
    if logits.dim() != 3:
        raise ValueError(f"mean_softmax expects [B, V, K] logits, got {tuple(logits.shape)}")
    return logits.float().softmax(dim=-1).mean(dim=1)


def topk_accuracy(probs: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Top-k accuracy in percent (torchmetrics, micro average).

    Ties: top-1 takes the first maximal class (``argmax``), so among equal scores the lower class
    index wins; top-k takes ``torch.topk``'s k classes."""
    num_classes = probs.shape[1]
    return float(multiclass_accuracy(probs, labels, num_classes, top_k=min(k, num_classes), average="micro")) * 100


class PredictionStore:
    """Per-video predictions of the test loop, kept by video index so that a distributed sampler's
    padding (it repeats videos to even out the ranks) is counted once: :meth:`collect` gathers every
    rank's rows and keeps one per index."""

    def __init__(self) -> None:
        self.index: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.probs: dict[str, list[torch.Tensor]] = {}

    def add(self, index: torch.Tensor, labels: torch.Tensor, probs: dict[str, torch.Tensor]) -> None:
        self.index.append(index.detach().cpu())
        self.labels.append(labels.detach().cpu())
        for key, value in probs.items():
            self.probs.setdefault(key, []).append(value.detach().float().cpu())

    def collect(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``(index [N], labels [N], key -> probs [N, K])``, sorted by index, one row per video, the
        same on every rank. A collective call under DDP (every rank must call it)."""
        local = (
            torch.cat(self.index) if self.index else torch.zeros(0, dtype=torch.long),
            torch.cat(self.labels) if self.labels else torch.zeros(0, dtype=torch.long),
            {k: torch.cat(v) for k, v in self.probs.items()},
        )
        parts = [local]
        if world_size() > 1:  # small CPU tensors (N x K); object gather copes with uneven counts
            parts = [None] * world_size()
            dist.all_gather_object(parts, local)
        index = torch.cat([p[0] for p in parts])
        labels = torch.cat([p[1] for p in parts])
        keys = sorted({k for p in parts for k in p[2]})
        probs = {k: torch.cat([p[2][k] for p in parts if k in p[2]]) for k in keys}
        unique, first = _first_occurrence(index)
        return unique, labels[first], {k: v[first] for k, v in probs.items()}


def _first_occurrence(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique values of ``index`` and the position of each one's first occurrence."""
    unique, inverse = torch.unique(index, sorted=True, return_inverse=True)
    positions = torch.arange(len(index))
    first = torch.full((len(unique),), len(index), dtype=torch.long).scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first
