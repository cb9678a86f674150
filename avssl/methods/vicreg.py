"""VICReg (Bardes et al. 2022): variance-invariance-covariance regularisation of two views."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch

from avssl.losses import vicreg_loss
from avssl.methods.base import SSLMethod
from avssl.models.heads import mlp
from avssl.utils.dist import gather_with_grad


class VICReg(SSLMethod):
    """VICReg: a 3-layer expander (Linear + BN + ReLU twice, then a Linear without bias, as
    ``facebookresearch/vicreg``) and :func:`~avssl.losses.vicreg_loss` between the views' embeddings
    (the mean over view pairs for N views). No negatives, no momentum encoder, no predictor.

    The embeddings are gathered with their gradient from every process before the loss, so the
    variance and covariance terms see the global batch: 2 processes x B give the loss and the
    gradients of 1 process x 2B.

    Args:
        proj_hidden_dim: hidden width of the expander (VICReg: 8192).
        proj_dim: output width of the expander (VICReg: 8192).
        sim_weight: weight of the invariance term (VICReg: 25).
        var_weight: weight of the variance term (VICReg: 25).
        cov_weight: weight of the covariance term (VICReg: 1).
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(
        self,
        *,
        proj_hidden_dim: int = 8192,
        proj_dim: int = 8192,
        sim_weight: float = 25.0,
        var_weight: float = 25.0,
        cov_weight: float = 1.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.projector = mlp(self.backbone.out_dim, proj_hidden_dim, proj_dim, num_layers=3, hidden_bias=True, last_bias=False)

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        z = self.projector(features.flatten(0, 1)).view(b, n, -1)
        z_all = gather_with_grad(z)  # the global batch: variance and covariance over every process's samples
        hp = self.hparams
        pairs = list(combinations(range(n), 2))
        loss = sum(vicreg_loss(z_all[:, i], z_all[:, j], hp.sim_weight, hp.var_weight, hp.cov_weight) for i, j in pairs) / len(pairs)
        return loss, z
