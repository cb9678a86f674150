"""Initialise the two-stream ViT from a local image MAE / ViT or CAV-MAE checkpoint file.

Nothing is downloaded: the user passes a file they have (``model.backbone_init``). Two layouts
are read, found by their keys (a top-level ``model`` / ``state_dict`` / ``module.`` wrapper is
unwrapped):

* **image MAE / timm ViT** (``patch_embed.proj.weight``, ``blocks.N.*``, ``norm.*``): blocks
  ``0 .. depth - 1`` initialise both streams' own blocks, the next ``shared_depth`` the shared
  blocks (their single LayerNorm pair copied into the joint and both modalities' pairs), ``norm``
  both streams' final LayerNorms (and the joint one). The RGB patch projection initialises the
  video's (repeated over a tubelet's frames and divided by its length) and, summed over the
  colour channels, the audio's one-channel projection (as AST adapts ImageNet weights to
  spectrograms). This is how CAV-MAE initialises from ImageNet MAE weights.
* **CAV-MAE** (``patch_embed_a`` / ``patch_embed_v``, ``blocks_a`` / ``blocks_v`` / ``blocks_u``,
  ``norm_a`` / ``norm_v`` / ``norm``, ``modality_a`` / ``modality_v``): one to one.

Fixed positions (``pos_embed``), class tokens and decoders are not encoder weights here and are
reported as unused. Every shape must match; the report names what was loaded, what was left at
its initialisation and what in the file was not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from avssl.errors import ConfigError


@dataclass
class InitReport:
    """What :func:`load_vit_weights` did: ``loaded`` backbone keys, backbone keys ``kept`` at their
    initialisation, source keys ``unused``."""

    source: str
    layout: str
    loaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def some(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f", ... ({len(keys)})" if len(keys) > 6 else "") if keys else "none"

        return (
            f"{self.source} ({self.layout} layout): loaded {len(self.loaded)} tensors; "
            f"left at their initialisation: {some(self.kept)}; not used from the file: {some(self.unused)}"
        )


def read_state(path: str | Path, field_name: str) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` or torch file, unwrapped from ``model`` / ``state_dict`` /
    ``module.``; weights-only loading (no pickled code runs)."""
    from avssl.reliability.checkpoints import load_checkpoint_file

    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = load_checkpoint_file(path, field_name)
    for key in ("model", "state_dict"):
        if isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}
    if not state:
        raise ConfigError(f"{field_name}: {path} holds no tensors")
    return state


def _mae_mapping(backbone: nn.Module, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone key -> tensor, from an image MAE / ViT state dict."""
    cfg, out = backbone.config, {}
    block = re.compile(r"blocks\.(\d+)\.(.+)")
    for key, value in source.items():
        if key == "patch_embed.proj.weight":  # [D, 3, p, p]
            out["video.patch_embed.proj.weight"] = value[:, :, None].repeat(1, 1, cfg.tubelet, 1, 1) / cfg.tubelet
            out["audio.patch_embed.proj.weight"] = value.sum(dim=1, keepdim=True)
        elif key == "patch_embed.proj.bias":
            out["video.patch_embed.proj.bias"] = out["audio.patch_embed.proj.bias"] = value
        elif key.startswith("norm."):
            for target in ("video.norm.", "audio.norm.") + (("joint_norm.",) if backbone.joint_norm is not None else ()):
                out[target + key[5:]] = value
        elif m := block.fullmatch(key):
            i, rest = int(m.group(1)), m.group(2)
            if i < cfg.depth:
                out[f"video.blocks.{i}.{rest}"] = out[f"audio.blocks.{i}.{rest}"] = value
            elif i < cfg.depth + cfg.shared_depth:
                j = i - cfg.depth
                names = [rest]
                if rest.startswith(("norm1.", "norm2.")):  # to each pair of LayerNorms the shared block has
                    n, param = rest.split(".", 1)
                    names = [f"{n}{pair}.{param}" for pair in ("", "_a", "_v") if hasattr(backbone.shared[j], n + pair)]
                for name in names:
                    out[f"shared.{j}.{name}"] = value
    return out


CAVMAE_NAMES = (
    ("patch_embed_a.", "audio.patch_embed."),
    ("patch_embed_v.", "video.patch_embed."),
    ("blocks_a.", "audio.blocks."),
    ("blocks_v.", "video.blocks."),
    ("blocks_u.", "shared."),
    ("norm_a.", "audio.norm."),
    ("norm_v.", "video.norm."),
    ("norm.", "joint_norm."),
    ("modality_a", "audio.modality"),
    ("modality_v", "video.modality"),
)


def _cavmae_mapping(backbone: nn.Module, source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in source.items():
        for theirs, ours in CAVMAE_NAMES:
            if key.startswith(theirs):
                target = ours + key[len(theirs) :]
                if target == "video.patch_embed.proj.weight" and value.dim() == 4:  # one frame -> a tubelet
                    t = backbone.config.tubelet
                    value = value[:, :, None].repeat(1, 1, t, 1, 1) / t
                out[target] = value
                break
    return out


def load_vit_weights(backbone: nn.Module, path: str | Path, field_name: str = "model.backbone_init") -> InitReport:
    """Copy the weights of a local MAE / ViT or CAV-MAE checkpoint into ``backbone`` (a
    :class:`~avssl.models.backbone.TwoStreamBackbone` with ``encoder: vit``); returns the report.
    A tensor whose shape differs from the backbone's is an error naming both."""
    if backbone.config.encoder != "vit":
        raise ConfigError(f"{field_name}: initialising from a ViT checkpoint needs model.backbone.encoder vit")
    source = read_state(path, field_name)
    if any(k.startswith(("patch_embed_a.", "blocks_a.")) for k in source):
        layout, mapped = "CAV-MAE", _cavmae_mapping(backbone, source)
        used = {k for k in source if any(k.startswith(theirs) for theirs, _ in CAVMAE_NAMES)}
    elif "patch_embed.proj.weight" in source:
        layout, mapped = "image MAE / ViT", _mae_mapping(backbone, source)
        cfg = backbone.config
        used = {k for k in source if k.startswith(("patch_embed.", "norm."))}
        used |= {k for k in source if (m := re.fullmatch(r"blocks\.(\d+)\..+", k)) and int(m.group(1)) < cfg.depth + cfg.shared_depth}
    else:
        raise ConfigError(
            f"{field_name}: {path} is neither an image MAE / ViT (patch_embed.proj.weight, blocks.N) nor a CAV-MAE "
            f"(patch_embed_a, blocks_a) state dict; its first keys: {sorted(source)[:5]}"
        )
    own = backbone.state_dict()
    unknown = sorted(k for k in mapped if k not in own)
    if unknown:
        raise ConfigError(f"{field_name}: {path} has tensors this backbone has no place for: {unknown[:5]} ({len(unknown)})")
    wrong = [f"{k}: file {tuple(v.shape)}, backbone {tuple(own[k].shape)}" for k, v in mapped.items() if v.shape != own[k].shape]
    if wrong:
        raise ConfigError(f"{field_name}: {path} does not fit model.backbone ({backbone.config.describe()}): {'; '.join(wrong[:3])}")
    with torch.no_grad():
        for key, value in mapped.items():
            own[key].copy_(value)
    return InitReport(
        source=str(path),
        layout=layout,
        loaded=sorted(mapped),
        kept=sorted(k for k in own if k not in mapped),
        unused=sorted(k for k in source if k not in used),
    )
