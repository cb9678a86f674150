"""SimSiam (Chen & He 2021): a Siamese encoder with a predictor and a stop-gradient."""

from __future__ import annotations

from typing import Any

import torch

from avssl.losses import simsiam_loss
from avssl.methods.base import SSLMethod
from avssl.models.heads import mlp


class SimSiam(SSLMethod):
    """SimSiam: 3-layer projector (BN on its output), bottleneck 2-layer predictor, loss
    ``D(p1, z2) / 2 + D(p2, z1) / 2`` with ``D = -cos(p, stopgrad(z))`` (the mean over ordered
    view pairs for N views). No negatives, no momentum encoder.

    Args:
        proj_hidden_dim: hidden width of the projector (SimSiam: 2048).
        proj_dim: output width of projector and predictor (SimSiam: 2048).
        pred_hidden_dim: bottleneck width of the predictor (SimSiam: 512).
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(self, *, proj_hidden_dim: int = 2048, proj_dim: int = 2048, pred_hidden_dim: int = 512, **kwargs: Any):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.projector = mlp(self.backbone.out_dim, proj_hidden_dim, proj_dim, num_layers=3, last_bn=True)
        self.predictor = mlp(proj_dim, pred_hidden_dim, proj_dim, num_layers=2)

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        z = self.projector(features.flatten(0, 1))
        p = self.predictor(z).view(b, n, -1)
        z = z.view(b, n, -1)
        loss = sum(simsiam_loss(p[:, i], z[:, j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        return loss, z
