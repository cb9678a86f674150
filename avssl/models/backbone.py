"""Two-stream backbone: video + audio encoders and a small replaceable fusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avssl.models.audio import AudioResNet2d
from avssl.models.video import VideoResNet3d

FUSIONS = ("concat",)


class TwoStreamBackbone(nn.Module):
    """``(video [B, 3, T, H, W], spec [B, 1, F, S]) -> [B, out_dim]`` (concatenation fusion).

    Args:
        width: base width of both encoders (64 = ResNet-18).
        layers: blocks per stage of both encoders ((2, 2, 2, 2) = ResNet-18).
        stem_temporal_stride: temporal stride of the video stem (1: keep every frame).
        fusion: how the two vectors are combined; ``concat``.
    """

    def __init__(self, *, width: int = 64, layers: Sequence[int] = (2, 2, 2, 2), stem_temporal_stride: int = 1, fusion: str = "concat"):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        self.video = VideoResNet3d(width=width, layers=layers, stem_temporal_stride=stem_temporal_stride)
        self.audio = AudioResNet2d(width=width, layers=layers)
        self.out_dim = self.video.out_dim + self.audio.out_dim

    def forward_streams(self, video: torch.Tensor, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-stream and fused features: ``{"video": [B, Dv], "audio": [B, Da], "fused": [B, Dv + Da]}``."""
        v, a = self.video(video), self.audio(spec)
        return {"video": v, "audio": a, "fused": torch.cat([v, a], dim=1)}

    def forward(self, video: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        return self.forward_streams(video, spec)["fused"]
