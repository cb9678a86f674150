"""Two-stream backbone: video + audio encoders (ResNets or ViTs) and a small replaceable fusion."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from avssl.errors import ConfigError
from avssl.models.audio import AudioResNet2d
from avssl.models.video import VideoResNet3d
from avssl.models.vit import Block, ViTStream, init_vit_

ENCODERS = ("resnet", "vit")
FUSIONS = ("concat", "joint")


@dataclass(frozen=True)
class BackboneConfig:
    """The two-stream backbone's architecture, configured once: a method builds its backbone from
    it (``model.init_args.backbone``), its checkpoints store it, and an evaluation rebuilds the
    encoder from the checkpoint's copy.

    Args:
        encoder: ``resnet`` (the paper's 3D / 2D ResNets) or ``vit`` (transformers on patches,
            :mod:`avssl.models.vit`).
        width: base width of both ResNets (64 = ResNet-18; 16 for CPU demos).
        layers: residual blocks per stage of both ResNets ((2, 2, 2, 2) = ResNet-18).
        stem_temporal_stride: temporal stride of the video ResNet's stem (1: keep every frame).
        dim: width of both ViTs (768 = ViT-B, 192 = ViT-Ti).
        depth: blocks of each ViT's own (modality-specific) stack (ViT-B: 12; CAV-MAE: 11).
        heads: attention heads (ViT-B: 12).
        patch_size: side of the ViTs' square patches, in spectrogram bins and pixels (16).
        tubelet: frames per video token (1: every frame's patches are tokens; 2: two-frame tubelets).
        shared_depth: blocks after the two stacks that both modalities share, each pass with its
            modality's LayerNorms (CAV-MAE: 1; 0: two independent ViTs).
        fusion: how the two streams are combined into the fused features: ``concat`` (the two
            streams' features side by side) or ``joint`` (ViT only: the two streams' tokens
            together through the shared blocks with their joint LayerNorms, a final LayerNorm,
            then the mean over all tokens: CAV-MAE's multimodal representation).
    """

    encoder: str = "resnet"
    width: int = 64
    layers: tuple[int, int, int, int] = (2, 2, 2, 2)
    stem_temporal_stride: int = 1
    dim: int = 768
    depth: int = 12
    heads: int = 12
    patch_size: int = 16
    tubelet: int = 1
    shared_depth: int = 0
    fusion: str = "concat"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.encoder not in ENCODERS:
            raise ConfigError(f"model.backbone.encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"model.backbone.fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.width < 1 or len(self.layers) != 4 or min(self.layers) < 1 or self.stem_temporal_stride < 1:
            raise ConfigError(f"model.backbone: width, stem_temporal_stride and 4 stage depths must be >= 1, got {self}")
        if self.encoder == "vit":
            if min(self.dim, self.depth, self.heads, self.patch_size, self.tubelet) < 1 or self.shared_depth < 0:
                raise ConfigError(f"model.backbone: dim, depth, heads, patch_size and tubelet must be >= 1, shared_depth >= 0, got {self}")
            if self.dim % self.heads or self.dim % 4:
                raise ConfigError(f"model.backbone.dim ({self.dim}) must be a multiple of 4 and of heads ({self.heads})")
        elif self.fusion == "joint" or self.shared_depth:
            raise ConfigError("model.backbone: fusion joint and shared_depth need encoder: vit (transformer tokens)")

    def describe(self) -> str:
        """A short name of the architecture (the model card's)."""
        if self.encoder == "resnet":
            return f"video 3D ResNet, audio 2D ResNet; width {self.width}, blocks per stage {list(self.layers)}"
        shared = f", then {self.shared_depth} shared" if self.shared_depth else ""
        return (
            f"video and audio ViTs; dim {self.dim}, {self.depth} blocks each{shared}, {self.heads} heads, "
            f"{self.patch_size}-px patches, {self.tubelet}-frame video tokens, {self.fusion} fusion"
        )


class TwoStreamBackbone(nn.Module):
    """``(video [B, 3, T, H, W], spec [B, 1, F, S]) -> [B, out_dim]`` (concatenation fusion).

    Args:
        config: the architecture (default: ResNet-18 for both streams).
    """

    def __init__(self, config: BackboneConfig | None = None):
        super().__init__()
        self.config = config = config or BackboneConfig()
        if config.encoder == "resnet":
            self.video = VideoResNet3d(width=config.width, layers=config.layers, stem_temporal_stride=config.stem_temporal_stride)
            self.audio = AudioResNet2d(width=config.width, layers=config.layers)
        else:
            vit = {"dim": config.dim, "depth": config.depth, "heads": config.heads, "patch_size": config.patch_size}
            self.video = ViTStream("video", tubelet=config.tubelet, **vit)
            self.audio = ViTStream("audio", **vit)
        joint = config.fusion == "joint"
        # CAV-MAE's unified blocks: their joint norms only exist where a joint pass uses them
        self.shared = nn.ModuleList(Block(config.dim, config.heads, joint=joint, modal=True) for _ in range(config.shared_depth))
        self.joint_norm = nn.LayerNorm(config.dim) if joint else None
        if self.shared or joint:
            init_vit_(self.shared)
        self.out_dim = config.dim if joint else self.video.out_dim + self.audio.out_dim
        self.channels_last = False  # see use_channels_last()

    def use_channels_last(self) -> TwoStreamBackbone:
        """Video encoder (and its input) in ``channels_last_3d``, audio in ``channels_last``."""
        self.video.to(memory_format=torch.channels_last_3d)
        self.audio.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def shared_blocks(self, tokens: torch.Tensor, modality: str | None = None) -> torch.Tensor:
        """The shared blocks on ``[B, N, dim]`` tokens of one modality (its LayerNorms) or, with
        ``modality`` ``None``, of both together (the joint LayerNorms)."""
        for block in self.shared:
            tokens = block(tokens, modality)
        return tokens

    def joint(self, audio_tokens: torch.Tensor, video_tokens: torch.Tensor) -> torch.Tensor:
        """Joint tokens ``[B, Na + Nv, dim]``: both streams' tokens (after their own blocks)
        through the shared blocks together, then the joint LayerNorm."""
        return self.joint_norm(self.shared_blocks(torch.cat([audio_tokens, video_tokens], dim=1)))

    def forward_streams(self, video: torch.Tensor | None, spec: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-stream and fused features: ``{"video": [B, Dv], "audio": [B, Da], "fused": [B, D]}``.
        With one input ``None`` (single-stream data) only the other stream's features, no fusion."""
        if video is None and spec is None:
            raise ValueError("forward_streams needs video, audio or both")
        if self.channels_last:
            video = video.contiguous(memory_format=torch.channels_last_3d) if video is not None else None
            spec = spec.contiguous(memory_format=torch.channels_last) if spec is not None else None
        inputs = {k: x for k, x in (("video", video), ("audio", spec)) if x is not None}
        if self.config.encoder == "resnet":
            out = {k: getattr(self, k)(x) for k, x in inputs.items()}
        else:
            tokens = {k: getattr(self, k).encode(getattr(self, k).embed(x)) for k, x in inputs.items()}
            out = {k: getattr(self, k).pool(self.shared_blocks(t, k)) for k, t in tokens.items()}
        if len(out) == 2:
            if self.joint_norm is not None:
                out["fused"] = self.joint(tokens["audio"], tokens["video"]).mean(dim=1)
            else:
                out["fused"] = torch.cat([out["video"], out["audio"]], dim=1)
        return out

    def split(self, fused: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inverse of the fusion: ``{"video": [..., Dv], "audio": [..., Da]}`` views of fused
        features ``[..., Dv + Da]`` (concatenation: no copy; the joint fusion has no inverse)."""
        if self.joint_norm is not None:
            raise ConfigError("model.backbone.fusion joint: the fused features cannot be split into the streams' (use concat)")
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
