"""SimCLR (Chen et al. 2020) on audio-visual clips: NT-Xent over the global batch (eq. 1)."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch

from avssl.losses import info_nce
from avssl.methods.base import SSLMethod
from avssl.models.heads import mlp
from avssl.utils.dist import gather_with_grad


class SimCLR(SSLMethod):
    """SimCLR: a 2-layer projection MLP and InfoNCE with negatives from every process.

    Args:
        proj_hidden_dim: hidden width of the projector (SimCLR: 2048).
        proj_dim: output width of the projector (SimCLR: 128).
        temperature: softmax temperature tau of eq. 1.
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(self, *, proj_hidden_dim: int = 2048, proj_dim: int = 128, temperature: float = 0.1, **kwargs: Any):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.projector = mlp(self.backbone.out_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.temperature = temperature

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        z = self.projector(features.flatten(0, 1)).view(b, n, -1)  # [B, N, P]
        z_all = gather_with_grad(z)  # [B * world, N, P]: negatives from the global batch
        pairs = list(combinations(range(n), 2))  # N = 2: the single pair (0, 1)
        loss = sum(info_nce(z_all[:, i], z_all[:, j], self.temperature) for i, j in pairs) / len(pairs)
        return loss, z
