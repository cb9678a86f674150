"""Two-stream backbone: video + audio encoders and a small replaceable fusion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from avssl.errors import ConfigError
from avssl.models.audio import AudioResNet2d
from avssl.models.video import VideoResNet3d

FUSIONS = ("concat",)


@dataclass(frozen=True)
class BackboneConfig:
    """The two-stream backbone's architecture, configured once: a method builds its backbone from
    it (``model.init_args.backbone``), its checkpoints store it, and an evaluation rebuilds the
    encoder from the checkpoint's copy.

    Args:
        width: base width of both encoders (64 = ResNet-18; 16 for CPU demos).
        layers: residual blocks per stage of both encoders ((2, 2, 2, 2) = ResNet-18).
        stem_temporal_stride: temporal stride of the video stem (1: keep every frame).
        fusion: how the two feature vectors are combined; ``concat``.
    """

    width: int = 64
    layers: tuple[int, int, int, int] = (2, 2, 2, 2)
    stem_temporal_stride: int = 1
    fusion: str = "concat"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.fusion not in FUSIONS:
            raise ConfigError(f"model.backbone.fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.width < 1 or len(self.layers) != 4 or min(self.layers) < 1 or self.stem_temporal_stride < 1:
            raise ConfigError(f"model.backbone: width, stem_temporal_stride and 4 stage depths must be >= 1, got {self}")


class TwoStreamBackbone(nn.Module):
    """``(video [B, 3, T, H, W], spec [B, 1, F, S]) -> [B, out_dim]`` (concatenation fusion).

    Args:
        config: the architecture (default: ResNet-18 for both streams).
    """

    def __init__(self, config: BackboneConfig | None = None):
        super().__init__()
        self.config = config = config or BackboneConfig()
        self.video = VideoResNet3d(width=config.width, layers=config.layers, stem_temporal_stride=config.stem_temporal_stride)
        self.audio = AudioResNet2d(width=config.width, layers=config.layers)
        self.out_dim = self.video.out_dim + self.audio.out_dim
        self.channels_last = False  # see use_channels_last()

    def use_channels_last(self) -> TwoStreamBackbone:
        """Video encoder (and its input) in ``channels_last_3d``, audio in ``channels_last``."""
        self.video.to(memory_format=torch.channels_last_3d)
        self.audio.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def forward_streams(self, video: torch.Tensor | None, spec: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-stream and fused features: ``{"video": [B, Dv], "audio": [B, Da], "fused": [B, Dv + Da]}``.
        With one input ``None`` (single-stream data) only the other stream's features, no fusion."""
        if video is None and spec is None:
            raise ValueError("forward_streams needs video, audio or both")
        out = {}
        if video is not None:
            out["video"] = self.video(video.contiguous(memory_format=torch.channels_last_3d) if self.channels_last else video)
        if spec is not None:
            out["audio"] = self.audio(spec.contiguous(memory_format=torch.channels_last) if self.channels_last else spec)
        if len(out) == 2:
            out["fused"] = torch.cat([out["video"], out["audio"]], dim=1)
        return out

    def split(self, fused: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inverse of the fusion: ``{"video": [..., Dv], "audio": [..., Da]}`` views of fused
        features ``[..., Dv + Da]`` (concatenation: no copy)."""
        if fused.shape[-1] != self.out_dim:
            raise ValueError(f"split expects fused features of width {self.out_dim}, got {tuple(fused.shape)}")
        return {"video": fused[..., : self.video.out_dim], "audio": fused[..., self.video.out_dim :]}

    def forward(self, video: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        return self.forward_streams(video, spec)["fused"]

    def encode_views(self, views: dict) -> dict[str, torch.Tensor]:
        """``{readout: [B, N, D]}`` of a batch of views ``{"video": [B, N, 3, T, h, w], "spec":
        [B, N, 1, n_mels, frames]}`` (single-stream data: either key alone), as
        :meth:`~avssl.augment.pipeline.AVTransform.eval_views` and ``train_views`` return them."""
        b, n = (views["video"] if "video" in views else views["spec"]).shape[:2]
        out = self.forward_streams(*(views[k].flatten(0, 1) if k in views else None for k in ("video", "spec")))
        return {readout: value.view(b, n, -1) for readout, value in out.items()}

    @torch.no_grad()
    def estimate_norm_statistics(self, views: Iterable[dict]) -> TwoStreamBackbone:
        """Re-estimate every batch-norm layer's running statistics as the average over ``views``
        (batches ``{"video": [B, N, ...], "spec": [B, N, ...]}`` as
        :meth:`~avssl.augment.pipeline.AVTransform.eval_views` and ``train_views`` return them),
        then switch to eval mode; returns ``self``. A freshly initialised encoder otherwise
        normalises with the initial statistics (mean 0, variance 1), not the data's."""
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for module in norms:
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the batches
        self.train()
        for batch in views:
            self.encode_views(batch)
        for module, momentum in zip(norms, momenta, strict=True):
            module.momentum = momentum
        return self.eval()
