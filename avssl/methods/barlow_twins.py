"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of two views' embeddings pushed to the identity."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch

from avssl.losses import barlow_twins_loss
from avssl.methods.base import SSLMethod
from avssl.models.heads import mlp
from avssl.utils.dist import gather_with_grad


class BarlowTwins(SSLMethod):
    """Barlow Twins: a 3-layer projector (Linear without bias + BN + ReLU twice, then a Linear
    without bias, as ``facebookresearch/barlowtwins``) and :func:`~avssl.losses.barlow_twins_loss`
    between the views' embeddings (the mean over view pairs for N views).

    The embeddings are gathered with their gradient from every process before the loss, so the
    per-dimension normalisation and the cross-correlation use the global batch: 2 processes x B
    give the loss and the gradients of 1 process x 2B.

    Args:
        proj_hidden_dim: hidden width of the projector (Barlow Twins: 8192).
        proj_dim: output width of the projector (Barlow Twins: 8192).
        lambd: weight of the off-diagonal (redundancy reduction) term (Barlow Twins: 0.0051).
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(self, *, proj_hidden_dim: int = 8192, proj_dim: int = 8192, lambd: float = 0.0051, **kwargs: Any):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.projector = mlp(self.backbone.out_dim, proj_hidden_dim, proj_dim, num_layers=3, last_bias=False)

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        z = self.projector(features.flatten(0, 1)).view(b, n, -1)
        z_all = gather_with_grad(z)  # the global batch: normalisation and cross-correlation over every process's samples
        pairs = list(combinations(range(n), 2))
        loss = sum(barlow_twins_loss(z_all[:, i], z_all[:, j], self.hparams.lambd) for i, j in pairs) / len(pairs)
        return loss, z
