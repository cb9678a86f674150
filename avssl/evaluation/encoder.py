"""A frozen pre-trained encoder and the input settings it was trained with.

A pre-training checkpoint holds the backbone's weights and architecture (the method's
hyper-parameters) and the data module's settings (``datamodule_hyper_parameters``). An evaluation
must feed the encoder what it was trained on, so :func:`input_overrides` turns those settings into
the evaluation's data settings:

* :data:`INPUT_SETTINGS` define the encoder's input (frames per clip, clip length, audio rate,
  spectrogram, pixel normalisation). They are taken from the checkpoint; an explicit different
  value is an error naming the field and both values, unless ``override`` is set (then the
  explicit value is used and logged).
* :data:`DATASET_SETTINGS` say which data and at which decode resolution: taken from the
  checkpoint unless given explicitly (an explicit value wins and is logged when it differs). The
  decode short side belongs here because the test protocol sets its own resolution (the paper's
  256 x 256 test crops need frames decoded at a short side of 256, whatever the pre-training
  decoded at; CVRL trains at 224 and tests at 256 the same way).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avssl.errors import ConfigError
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone

log = logging.getLogger(__name__)

INPUT_SETTINGS = ("num_frames", "clip_seconds", "sample_rate", "spectrogram", "augment.mean", "augment.std")
DATASET_SETTINGS = ("root", "synthetic", "synthetic_root", "drop_cross_split_duplicates", "short_side")


@dataclass
class PretrainedEncoder:
    """A pre-training checkpoint's backbone (frozen, eval mode) with what describes it.

    Attributes:
        backbone: the two-stream encoder.
        path: the checkpoint file.
        sha256: its content hash (results name the exact encoder they measured).
        architecture: the backbone's architecture (from the checkpoint).
        data: the data module's settings during pre-training (empty for checkpoints written
            before they were saved).
        method: the pre-training method's class path, if recorded.
        stream_projectors: the audio and video projectors of the cross-modal / per-stream terms
            (``{"audio": ..., "video": ...}``, frozen), when the checkpoint has them; else ``None``.
    """

    backbone: TwoStreamBackbone
    path: str
    sha256: str
    architecture: BackboneConfig
    data: dict[str, Any] = field(default_factory=dict)
    method: str | None = None
    stream_projectors: nn.ModuleDict | None = None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str | Path, field_name: str = "model.encoder_ckpt") -> dict:
    """A Lightning checkpoint loaded with ``weights_only=True`` (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{field_name}: checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a zip/pickle file, or a payload weights_only refuses
        raise ConfigError(f"{field_name}: {path} is not a loadable weights-only checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ConfigError(f"{field_name}: {path} is not a Lightning checkpoint (no state_dict / hyper_parameters)")
    return ckpt


def load_encoder(path: str | Path, field_name: str = "model.encoder_ckpt") -> PretrainedEncoder:
    """Rebuild and load the backbone of a pre-training checkpoint, frozen and in eval mode."""
    ckpt = read_checkpoint(path, field_name)
    hp = ckpt["hyper_parameters"]
    # checkpoints of avssl 0.1 kept the architecture as top-level hyper-parameters
    settings = hp.get("backbone") or {k: hp[k] for k in ("width", "layers", "stem_temporal_stride", "fusion") if k in hp}
    if not settings:
        raise ConfigError(
            f"{field_name}: {path} holds no backbone settings (hyper_parameters.backbone): not an avssl pre-training checkpoint"
        )
    try:
        arch = BackboneConfig(**settings)
    except TypeError as e:
        raise ConfigError(f"{field_name}: {path}: unknown backbone settings {settings} ({e})") from None
    backbone = TwoStreamBackbone(arch)
    state = {k.removeprefix("backbone."): v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong_shape:
        raise ConfigError(
            f"{field_name}: {path} does not match the backbone {arch}: missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}), wrong shapes {wrong_shape[:5]}"
        )
    backbone.load_state_dict(state)
    backbone.requires_grad_(False).eval()
    return PretrainedEncoder(
        stream_projectors=_stream_projectors(ckpt, backbone, field_name, path),
        backbone=backbone,
        path=str(path),
        sha256=file_sha256(path),
        architecture=arch,
        data=dict(ckpt.get("datamodule_hyper_parameters") or {}),
        method=hp.get("_class_path"),
    )


def _stream_projectors(ckpt: dict, backbone: TwoStreamBackbone, field_name: str, path) -> nn.ModuleDict | None:
    """The checkpoint's cross-modal / per-stream projectors, rebuilt from its hyper-parameters."""
    from avssl.methods.base import stream_projector

    hp = ckpt["hyper_parameters"]
    if not (hp.get("cross_modal_weight", 0) > 0 or hp.get("stream_weight", 0) > 0):
        return None  # trained without the terms: no projectors
    state = {k.removeprefix("stream_projectors."): v for k, v in ckpt["state_dict"].items() if k.startswith("stream_projectors.")}
    dims = {"video": backbone.video.out_dim, "audio": backbone.audio.out_dim}
    head, hidden, out = hp.get("stream_head", "mlp"), hp.get("stream_hidden_dim", 512), hp.get("stream_dim", 128)
    projectors = nn.ModuleDict({k: stream_projector(head, d, hidden, out) for k, d in dims.items()})
    try:
        projectors.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(f"{field_name}: {path}: its stream projectors do not match their settings ({e})") from None
    return projectors.requires_grad_(False).eval()


def leaves(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and tuples are values)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as settings (lists and tuples alike, dataclass-like namespaces as dicts)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def input_overrides(encoder_data: dict, explicit: dict[str, Any], *, override: bool, source: str) -> dict[str, Any]:
    """The data settings an evaluation of an encoder pre-trained with ``encoder_data`` must use.

    Both arguments map dotted leaf keys (``num_frames``, ``spectrogram.hop_length``,
    ``augment.mean``, ...) to values; ``explicit`` holds only what the user set. Returns the keys
    to set (the checkpoint's value where the user set none). Raises :class:`ConfigError` for an
    explicit input setting that conflicts with the checkpoint, unless ``override``."""
    chosen: dict[str, Any] = {}
    for key, trained in encoder_data.items():
        setting = next((s for s in (*INPUT_SETTINGS, *DATASET_SETTINGS) if key == s or key.startswith(s + ".")), None)
        if setting is None:
            continue  # the evaluation protocol's own (crops, clips, batch, augmentation)
        if key not in explicit:
            chosen[key] = trained
            continue
        given = explicit[key]
        if _same(given, trained):
            continue
        if setting in INPUT_SETTINGS and not override:
            raise ConfigError(
                f"data.{key}: {given!r} conflicts with the encoder's pre-training value {trained!r} ({source}); "
                f"drop the setting to evaluate with {trained!r}, or set model.init_args.override_input_settings=true"
            )
        log.warning("data.%s = %r as set, not the encoder's pre-training %r (%s)", key, given, trained, source)
    if chosen:
        log.info("data settings from the encoder checkpoint: %s", ", ".join(f"{k}={v!r}" for k, v in chosen.items()))
    return chosen
