"""Momentum (EMA) target network and its schedule, shared by MoCo v3 and BYOL."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from avssl.errors import ConfigError
from avssl.methods.base import SSLMethod
from avssl.reliability.finite import logging_step


def momentum_schedule(step: int, total_steps: int, base: float, end: float = 1.0) -> float:
    """Cosine increase of the EMA coefficient from ``base`` at step 0 to ``end`` at ``total_steps``
    (BYOL eq. after (2), MoCo v3): ``end - (end - base) * (cos(pi * step / total) + 1) / 2``.
    Steps past the end stay at ``end``."""
    if total_steps <= 0:
        return end
    progress = min(max(step, 0), total_steps) / total_steps
    return end - (end - base) * (math.cos(math.pi * progress) + 1) / 2


class MomentumTarget(nn.Module):
    """A frozen copy of some online modules, moved towards them by EMA after each optimiser step.

    ``target = tau * target + (1 - tau) * online`` for every parameter (one fused
    ``torch._foreach_lerp_`` over all of them, on their device); buffers (BatchNorm running
    statistics) are the target's own, updated by its forward passes as in MoCo v3 / BYOL. The target
    never receives gradients (``requires_grad=False``) and is saved in checkpoints under its own
    prefix, so resuming restores it.

    Args:
        modules: name -> online module; deep-copied at construction.
    """

    def __init__(self, modules: dict[str, nn.Module]):
        super().__init__()
        self.nets = nn.ModuleDict({name: copy.deepcopy(m) for name, m in modules.items()})
        for p in self.nets.parameters():
            p.requires_grad_(False)

    def __getitem__(self, name: str) -> nn.Module:
        return self.nets[name]

    @torch.no_grad()
    def update(self, online: dict[str, nn.Module], tau: float) -> None:
        """EMA step towards ``online`` (same names and structure as at construction)."""
        if set(online) != set(self.nets):
            raise ValueError(f"MomentumTarget.update: expected modules {sorted(self.nets)}, got {sorted(online)}")
        target_params, online_params = [], []
        for name, net in self.nets.items():
            target_params += list(net.parameters())
            online_params += [p.detach() for p in online[name].parameters()]
        if len(target_params) != len(online_params):
            raise ValueError("MomentumTarget.update: online modules no longer match the target's structure")
        torch._foreach_lerp_(target_params, online_params, 1.0 - tau)


class MomentumMethod(SSLMethod):
    """Base of the methods with a momentum target (MoCo v3, BYOL).

    The target copies ``backbone`` and ``projector`` (set by the subclass before calling
    :meth:`build_target`) and follows them after every optimiser step with ``tau`` rising from
    ``base_momentum`` to ``final_momentum`` on a cosine over all training steps.

    Args:
        base_momentum: EMA coefficient at step 0.
        final_momentum: EMA coefficient at the last step.
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(self, *, base_momentum: float, final_momentum: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        for name, value in (("base_momentum", base_momentum), ("final_momentum", final_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"model.{name} must be in [0, 1], got {value}")
        self.base_momentum, self.final_momentum = base_momentum, final_momentum
        self.target: MomentumTarget | None = None

    def build_target(self) -> None:
        self.target = MomentumTarget({"backbone": self.backbone, "projector": self.projector})

    def online_modules(self) -> dict[str, nn.Module]:
        return {"backbone": self.backbone, "projector": self.projector}

    @torch.no_grad()
    def target_projections(self, batch: dict) -> torch.Tensor:
        """Target projections ``[B, N, P]`` of every view (no gradient)."""
        video, spec = batch["video"], batch["spec"]
        b, n = video.shape[:2]
        feats = self.target["backbone"](video.flatten(0, 1), spec.flatten(0, 1))
        return self.target["projector"](feats).view(b, n, -1)

    def current_momentum(self) -> float:
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 0
        return momentum_schedule(self.global_step, total, self.base_momentum, self.final_momentum)

    def optimizer_step(self, *args, **kwargs) -> None:
        """The optimiser step, then the EMA step of the target (only on real optimiser steps, so
        gradient accumulation does not change the schedule)."""
        super().optimizer_step(*args, **kwargs)
        tau = self.current_momentum()
        self.target.update(self.online_modules(), tau)
        if logging_step(self._trainer):  # a float becomes a host-to-device copy: only when metrics are written
            self.log("train/momentum", tau, batch_size=1)
