"""Cross-modal contrastive learning (AVID, CAV-MAE's contrastive term, ImageBind): a clip's audio
and its video are the positive pair, the other clips' other modality the negatives."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch
from torch import nn

from avssl.errors import ConfigError
from avssl.losses import cross_modal_nce, info_nce
from avssl.methods.base import SSLMethod
from avssl.models.heads import mlp
from avssl.utils.dist import gather_with_grad

POSITIVES = ("same_clip", "other_clip")


def cross_modal_projectors(dims: dict[str, int], hidden_dim: int, out_dim: int) -> nn.ModuleDict:
    """One 3-layer projector per stream (``{"video": in_dim, "audio": in_dim}``), BN between layers."""
    return nn.ModuleDict({k: mlp(d, hidden_dim, out_dim, num_layers=3) for k, d in dims.items()})


class CrossModal(SSLMethod):
    """Audio-visual instance discrimination across modalities.

    Each stream has its own projector (3 layers, ``512 -> 512 -> 128`` as AVID's heads, with
    BatchNorm between them); the objective is :func:`~avssl.losses.cross_modal_nce` (symmetric:
    audio -> video and video -> audio) between the audio and the video embeddings, with the
    negatives of the global batch (gathered with their gradient from every process). Optional
    within-modal terms (AVID's "joint" variant) add an InfoNCE between the views' audio and one
    between the views' video embeddings.

    The fused features are not used by the objective: the two encoders learn only from each other.

    Args:
        proj_hidden_dim: hidden width of each stream's projector (AVID: 512).
        proj_dim: output width of each stream's projector (AVID: 128).
        temperature: temperature of every term (AVID: 0.07).
        positive: which video is an audio clip's positive: ``same_clip`` (the video of the same
            view: audio and video cover the same time span, the cross-modal correspondence of
            AVID / CAV-MAE) or ``other_clip`` (the video of the other view of the same video: the
            two views are sampled at different times, so only what audio and video share over the
            whole video can match; with the paper's two-clip sampling this makes the task temporal-
            invariance as well as correspondence).
        audio_weight: weight of the within-modal audio term (InfoNCE between the views' audio
            embeddings; 0: off, the cross-modal objective alone).
        video_weight: weight of the within-modal video term.
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(
        self,
        *,
        proj_hidden_dim: int = 512,
        proj_dim: int = 128,
        temperature: float = 0.07,
        positive: str = "same_clip",
        audio_weight: float = 0.0,
        video_weight: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if positive not in POSITIVES:
            raise ConfigError(f"model.positive must be one of {', '.join(POSITIVES)}, got {positive!r}")
        for name, weight in (("audio_weight", audio_weight), ("video_weight", video_weight)):
            if weight < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {weight}")
        if temperature <= 0:
            raise ConfigError(f"model.temperature must be > 0, got {temperature}")
        dims = {"video": self.backbone.video.out_dim, "audio": self.backbone.audio.out_dim}
        self.projectors = cross_modal_projectors(dims, proj_hidden_dim, proj_dim)

    def positive_pairs(self, n: int) -> list[tuple[int, int]]:
        """(audio view, video view) index pairs of the positives among ``n`` views."""
        if self.hparams.positive == "same_clip":
            return [(i, i) for i in range(n)]
        if n < 2:
            raise ValueError("model.positive other_clip needs at least 2 views per video (data.num_clips)")
        return [(i, j) for i in range(n) for j in range(n) if i != j]

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        streams = self.backbone.split(features)
        local = {k: proj(streams[k].flatten(0, 1)).view(b, n, -1) for k, proj in self.projectors.items()}
        z = {k: gather_with_grad(v) for k, v in local.items()}  # negatives from the global batch
        hp = self.hparams
        pairs = self.positive_pairs(n)
        loss = sum(cross_modal_nce(z["audio"][:, i], z["video"][:, j], hp.temperature) for i, j in pairs) / len(pairs)
        views = list(combinations(range(n), 2))
        for stream, weight in (("audio", hp.audio_weight), ("video", hp.video_weight)):
            if weight > 0:
                loss = loss + weight * sum(info_nce(z[stream][:, i], z[stream][:, j], hp.temperature) for i, j in views) / len(views)
        return loss, torch.cat([local["audio"], local["video"]], dim=1)
