"""Online linear probe on detached features (monitoring only, as solo-learn and lightly do)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OnlineLinearProbe(nn.Module):
    """A linear classifier trained alongside pre-training on ``features.detach()``.

    Samples with label ``-1`` (unknown) are ignored. ``forward`` returns ``(loss, logs)``.
    """

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.head = nn.Linear(in_dim, max(1, num_classes))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.head(features.detach())  # [B, K]; no gradient reaches the encoder
        known = (labels >= 0).float()
        count = known.sum().clamp(min=1)
        per_sample = F.cross_entropy(logits, labels.clamp(min=0), reduction="none")
        loss = (per_sample * known).sum() / count
        top1 = ((logits.argmax(1) == labels).float() * known).sum() / count
        return loss, {"loss": loss.detach(), "top1": top1}
