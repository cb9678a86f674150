"""A frozen pre-trained encoder and what it was trained on.

A pre-training checkpoint holds the backbone's weights and architecture (the method's
hyper-parameters), the encoder's input (:class:`~avssl.spec.InputSpec`) and the data module's
settings (``datamodule_hyper_parameters``). An evaluation must feed the encoder what it was trained
on: :func:`encoder_settings` gives the data settings an evaluation takes from the checkpoint:

* the input (frames per clip, clip length, audio rate, spectrogram, pixel normalisation): taken
  from the checkpoint; an explicit different value is refused by
  :meth:`~avssl.spec.InputSpec.check` when the probe attaches the data, unless
  ``override_input_settings`` is set (then the explicit value is used and logged);
* :data:`DATASET_SETTINGS` (which data, at which decode resolution): taken from the checkpoint
  unless given explicitly (an explicit value wins and is logged when it differs). The decode short
  side belongs here because the test protocol sets its own resolution (the paper's 256 x 256 test
  crops need frames decoded at a short side of 256, whatever the pre-training decoded at; CVRL
  trains at 224 and tests at 256 the same way).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from avssl.errors import ConfigError
from avssl.evaluation.folder import CROSS_MODAL_PREFIX, TERMS_PREFIX, describe, is_folder, is_hub_id, read_folder, write_folder
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.reliability.checkpoints import load_checkpoint_file
from avssl.reliability.finite import refuse_nonfinite
from avssl.spec import METHOD_KEY, InputSpec, same_setting

log = logging.getLogger(__name__)

DATASET_SETTINGS = ("root", "synthetic", "synthetic_root", "synthetic_format", "drop_cross_split_duplicates", "short_side")


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
        input: the encoder's input (``None`` for checkpoints without data settings).
        method: the pre-training method's class path, if recorded.
        stream_projectors: the audio and video projectors of the cross-modal method or of the
            cross-modal / per-stream terms (``{"audio": ..., "video": ...}``, frozen; audio-video
            retrieval uses them), when the checkpoint has them; else ``None``.
    """

    backbone: TwoStreamBackbone
    path: str
    sha256: str
    architecture: BackboneConfig
    data: dict[str, Any] = field(default_factory=dict)
    input: InputSpec | None = None
    method: str | None = None
    stream_projectors: nn.ModuleDict | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def projector_prefix(self) -> str:
        """Where this encoder's method keeps its audio and video projectors in a state dict."""
        return projector_prefix(self.method)

    def state(self, projectors: bool) -> dict[str, Any]:
        """The tensors an encoder folder holds: ``backbone.*`` and, with ``projectors``, the
        audio and video projectors under the prefix their method keeps them under."""
        state = {f"backbone.{k}": v for k, v in self.backbone.state_dict().items()}
        if projectors:
            if self.stream_projectors is None:
                raise ConfigError(
                    f"projectors: {self.path} has no audio and video projectors "
                    "(only the cross-modal method, or cross_modal_weight / stream_weight > 0, trains them)"
                )
            state.update({self.projector_prefix + k: v for k, v in self.stream_projectors.state_dict().items()})
        return state

    def save_pretrained(self, out: str | Path, *, projectors: bool | None = None, results: list[dict] = ()) -> Path:
        """Write this encoder as an encoder folder (weights, ``config.json``, model card with the
        evaluation ``results``); ``projectors`` (default: when the encoder has them) adds the
        audio and video projectors. ``out`` must not exist or be empty."""
        projectors = self.stream_projectors is not None if projectors is None else projectors
        described = {"prefix": self.projector_prefix} if projectors else None
        return write_folder(out, self.state(projectors), {**self.config, "projectors": described}, results)

    @classmethod
    def from_pretrained(cls, source: str | Path) -> PretrainedEncoder:
        """:func:`load_encoder` of an encoder folder, a Hub id (``user/repo``) or a checkpoint."""
        return load_encoder(source, field_name="from_pretrained")

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        projectors: bool | None = None,
        results: list[dict] = (),
        commit_message: str = "Upload an avssl encoder",
        api=None,
    ):
        """Publish this encoder's folder to the Hugging Face Hub repository ``repo_id`` (created if
        needed); returns the upload's commit info. ``api``: an ``huggingface_hub.HfApi`` (default:
        one with ``token``)."""
        import tempfile

        if api is None:
            from huggingface_hub import HfApi

            api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "encoder", projectors=projectors, results=results)
            api.create_repo(repo_id, private=private, exist_ok=True)
            return api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)


def projector_prefix(method: str | None) -> str:
    """The state-dict prefix of the audio and video projectors: the cross-modal method's own, else
    those of the base's cross-modal / per-stream terms."""
    return CROSS_MODAL_PREFIX if str(method or "").endswith(".CrossModal") else TERMS_PREFIX


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str | Path, field_name: str = "model.encoder_ckpt") -> dict:
    """A Lightning checkpoint loaded with ``weights_only=True`` (no pickled code runs), or what an
    encoder folder / Hub id holds in the same shape (:func:`avssl.evaluation.folder.read_folder`).
    The last file read is kept, so ``avssl test`` reads its encoder once (for the data settings,
    then the weights); a changed file is read again."""
    if is_folder(path) or is_hub_id(path):
        return read_folder(path, field_name)
    path = Path(path)
    if not path.is_file():
        load_checkpoint_file(path, field_name)  # names what is there instead (nothing, a directory)
    stat = path.stat()
    return _load_checkpoint(str(path.resolve()), stat.st_mtime_ns, stat.st_size, field_name)


@functools.lru_cache(maxsize=1)
def _load_checkpoint(path: str, mtime_ns: int, size: int, field_name: str) -> dict:
    ckpt = load_checkpoint_file(path, field_name)
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ConfigError(f"{field_name}: {path} is not a Lightning checkpoint (no state_dict / hyper_parameters)")
    if ckpt["hyper_parameters"].get("encoder_ckpt") is not None or "encoder_sha256" in ckpt:
        raise ConfigError(
            f"{field_name}: {path} is an evaluation's checkpoint (a probe or fine-tuning), not a pre-training checkpoint; "
            "pass the checkpoint avssl fit saved"
        )
    return ckpt


def load_encoder(path: str | Path, field_name: str = "model.encoder_ckpt") -> PretrainedEncoder:
    """Rebuild and load the backbone of a pre-training checkpoint, an encoder folder
    (``avssl export``) or a Hugging Face Hub id (``user/repo``), frozen and in eval mode.
    Strict: a missing, unexpected or misshapen tensor is an error naming it."""
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
    refuse_nonfinite(ckpt["state_dict"], f"{field_name}: {path}")
    backbone.load_state_dict(state)
    backbone.requires_grad_(False).eval()
    sha256 = file_sha256(ckpt.get("weights", path))  # a folder: its weights file
    spec = InputSpec.from_checkpoint(ckpt)
    features = {"fused": backbone.out_dim, "video": backbone.video.out_dim, "audio": backbone.audio.out_dim}
    return PretrainedEncoder(
        stream_projectors=_stream_projectors(ckpt, backbone, field_name, path),
        backbone=backbone,
        path=str(path),
        sha256=sha256,
        architecture=arch,
        data=dict(ckpt.get("datamodule_hyper_parameters") or {}),
        input=spec,
        method=hp.get("_class_path") or ckpt.get(METHOD_KEY),
        config=describe(
            ckpt, architecture=arch, features=features, input=spec.to_dict() if spec else None, source=Path(str(path)).name, sha256=sha256
        ),
    )


def _stream_projectors(ckpt: dict, backbone: TwoStreamBackbone, field_name: str, path) -> nn.ModuleDict | None:
    """The checkpoint's audio and video projectors, rebuilt from its hyper-parameters: those of the
    cross-modal method (its objective), else those of the cross-modal / per-stream terms."""
    from avssl.methods.base import stream_projector
    from avssl.methods.cross_modal import cross_modal_projectors

    hp = ckpt["hyper_parameters"]
    if "folder" in ckpt and not ckpt["projectors"]:
        return None  # an encoder folder exported without them
    dims = {"video": backbone.video.out_dim, "audio": backbone.audio.out_dim}
    prefix = projector_prefix(hp.get("_class_path") or ckpt.get(METHOD_KEY))
    if prefix == CROSS_MODAL_PREFIX:
        projectors = cross_modal_projectors(dims, hp.get("proj_hidden_dim", 512), hp.get("proj_dim", 128))
    elif hp.get("cross_modal_weight", 0) > 0 or hp.get("stream_weight", 0) > 0:
        head, hidden, out = hp.get("stream_head", "mlp"), hp.get("stream_hidden_dim", 512), hp.get("stream_dim", 128)
        projectors = nn.ModuleDict({k: stream_projector(head, d, hidden, out) for k, d in dims.items()})
    else:
        return None  # trained without cross-modal projectors
    state = {k.removeprefix(prefix): v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
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


def encoder_settings(checkpoint: dict, explicit: dict[str, Any]) -> dict[str, Any]:
    """The data settings (dotted keys) an evaluation of the checkpoint's encoder takes from it:
    its input and :data:`DATASET_SETTINGS`, except those in ``explicit`` (what the user set). An
    explicit input setting is checked against the encoder later (:meth:`InputSpec.check`); an
    explicit dataset setting that differs is logged."""
    spec = InputSpec.from_checkpoint(checkpoint)
    if spec is None:
        return {}
    data = leaves(checkpoint.get("datamodule_hyper_parameters") or {})
    dataset = {k: v for k, v in data.items() if any(k == s or k.startswith(s + ".") for s in DATASET_SETTINGS)}
    chosen = {}
    for key, trained in {**spec.settings(), **dataset}.items():
        if key not in explicit:
            chosen[key] = trained
        elif key in dataset and not same_setting(explicit[key], trained):
            log.warning("data.%s = %r as set, not the encoder's pre-training %r", key, explicit[key], trained)
    if chosen:
        log.info("data settings from the encoder checkpoint: %s", ", ".join(f"{k}={v!r}" for k, v in chosen.items()))
    return chosen
