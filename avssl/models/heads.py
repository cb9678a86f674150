"""Projection / prediction MLPs (sizes as each method's paper, configurable)."""

from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    *,
    num_layers: int = 2,
    last_bn: bool = False,
    hidden_bias: bool = False,
    last_bias: bool | None = None,
) -> nn.Sequential:
    """``num_layers`` linear layers with BN + ReLU between them (SimCLR / MoCo v3 / BYOL heads).

    ``last_bn`` adds a non-affine BatchNorm after the last layer (MoCo v3 projector).
    ``hidden_bias``: biases in the layers followed by BN (VICReg's projector has them);
    ``last_bias``: a bias in the last layer (default: without ``last_bn``).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers += [nn.Linear(dim, hidden_dim, bias=hidden_bias), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    layers.append(nn.Linear(dim, out_dim, bias=not last_bn if last_bias is None else last_bias))
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)
