"""BYOL (Grill et al. 2020): predict the momentum target's projection of the other view."""

from __future__ import annotations

from typing import Any

import torch

from avssl.losses import byol_loss
from avssl.methods.momentum import MomentumMethod
from avssl.models.heads import mlp


class BYOL(MomentumMethod):
    """BYOL: online backbone + projector + predictor, momentum target backbone + projector,
    loss ``2 - 2 cos(p_i, z'_j)`` summed over both directions (over ordered view pairs divided by
    N - 1 for N views). No negatives.

    Args:
        proj_hidden_dim: hidden width of projector and predictor (BYOL: 4096).
        proj_dim: output width of both (BYOL: 256).
        base_momentum: EMA coefficient tau at step 0 (BYOL: 0.996, cosine to 1).
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(
        self, *, proj_hidden_dim: int = 4096, proj_dim: int = 256, base_momentum: float = 0.996, final_momentum: float = 1.0, **kwargs: Any
    ):
        super().__init__(base_momentum=base_momentum, final_momentum=final_momentum, **kwargs)
        self.save_hyperparameters()
        self.projector = mlp(self.backbone.out_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.predictor = mlp(proj_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.build_target()

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        z = self.projector(features.flatten(0, 1))
        p = self.predictor(z).view(b, n, -1)
        t = self.target_projections(batch)
        loss = sum(byol_loss(p[:, i], t[:, j]) for i in range(n) for j in range(n) if i != j) / (n - 1)
        return loss, z.view(b, n, -1)
