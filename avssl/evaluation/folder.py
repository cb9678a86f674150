"""The encoder folder: a pre-trained encoder as a self-describing directory, for sharing.

::

    DIR/model.safetensors   the encoders' weights (``backbone.*``; with the cross-modal
                            projectors, ``projectors.*`` or ``stream_projectors.*``)
    DIR/config.json         format version, avssl version, architecture, input, method and its
                            hyper-parameters, the data it was trained on, training length
    DIR/README.md           the model card (:mod:`avssl.evaluation.card`)

:func:`read_folder` returns what a pre-training checkpoint holds for an evaluation (the state
dict, the method's hyper-parameters, the data settings and the input specification), so that
everything that takes a checkpoint takes a folder the same way. A folder reads fully offline; a
Hugging Face Hub id (``user/repo``) is downloaded first (:func:`resolve`).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path
from typing import Any

from avssl.errors import ConfigError
from avssl.spec import CHECKPOINT_KEY as INPUT_KEY
from avssl.spec import DATA_COUNTS_KEY, METHOD_KEY
from avssl.utils.plain import plain

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
CROSS_MODAL_PREFIX, TERMS_PREFIX = "projectors.", "stream_projectors."  # the cross-modal method's; the base's terms'
PROJECTOR_PREFIXES = (CROSS_MODAL_PREFIX, TERMS_PREFIX)
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_folder(path: str | Path) -> bool:
    return Path(path).is_dir()


CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")


def is_hub_id(source: str | Path) -> bool:
    """``user/repo`` that cannot mean a local path: nothing of that name here, its first part is
    not a local folder, and it does not end like a checkpoint file (a mistyped ``runs/last.ckpt``
    stays a missing file, not a download)."""
    if not isinstance(source, str) or not HUB_ID.match(source) or Path(source).exists():
        return False
    owner, name = source.split("/")
    return not Path(owner).is_dir() and not name.lower().endswith(CHECKPOINT_SUFFIXES)


def resolve(source: str | Path, field_name: str) -> Path:
    """The local folder of ``source``: the folder itself, or a Hub repository's snapshot
    (downloaded with ``huggingface_hub``, then cached)."""
    if is_folder(source):
        return Path(source)
    if not is_hub_id(source):
        raise ConfigError(f"{field_name}: {source} is neither a checkpoint file, an encoder folder nor a Hub id (user/repo)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a declared dependency
        raise ConfigError(
            f"{field_name}: {source} looks like a Hub id; loading it needs huggingface_hub (pip install huggingface_hub)"
        ) from None
    try:
        return Path(snapshot_download(str(source), allow_patterns=[WEIGHTS, CONFIG, CARD], library_name="avssl"))
    except Exception as e:  # offline, no such repository, no access: one line naming the id
        raise ConfigError(
            f"{field_name}: could not fetch the Hub repository {source} ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from None


PRIVATE = ("_class_path", "_instantiator", "backbone")  # hyper-parameters that are not the method's own settings


def data_name(settings: dict[str, Any]) -> str:
    """The training data in words: its root, or the embedded synthetic set's settings."""
    if settings.get("root"):
        return str(settings["root"])
    synthetic = settings.get("synthetic") or {}
    return (
        f"avssl's embedded synthetic set ({synthetic.get('num_classes')} classes x {synthetic.get('videos_per_class')} videos, "
        f"seed {synthetic.get('seed')})"
    )


def describe(checkpoint: dict, *, architecture, features: dict[str, int], input: dict | None, source: str, sha256: str) -> dict[str, Any]:
    """``config.json`` of the encoder of a pre-training ``checkpoint`` (an encoder folder's own
    config when it was read from one). Passed through JSON: tuples are lists, as a reader sees them."""
    if "config" in checkpoint:
        return checkpoint["config"]
    hp = checkpoint["hyper_parameters"]
    settings = plain(checkpoint.get("datamodule_hyper_parameters") or {})
    config = {
        "format_version": FORMAT_VERSION,
        "avssl_version": None,  # set when written
        "architecture": plain(architecture),
        "features": features,
        "input": input,
        "method": {
            "class_path": hp.get("_class_path") or checkpoint.get(METHOD_KEY),
            "hyper_parameters": {k: v for k, v in hp.items() if k not in PRIVATE},
        },
        "data": {"name": data_name(settings), "split": "train", "counts": checkpoint.get(DATA_COUNTS_KEY), "settings": settings},
        "training": {
            "global_step": checkpoint.get("global_step"),
            "epoch": checkpoint.get("epoch"),
            "source": source,
            "source_sha256": sha256,
        },
        "projectors": None,
    }
    return json.loads(json.dumps(config, default=_jsonable))


def _jsonable(value: Any) -> Any:
    """What JSON cannot hold in the settings of CLI-written checkpoints (jsonargparse namespaces, paths)."""
    return value.as_dict() if hasattr(value, "as_dict") else str(value)


def read_config(folder: Path, field_name: str) -> dict[str, Any]:
    """``config.json`` of an encoder folder, its format version checked."""
    path = folder / CONFIG
    if not path.is_file():
        raise ConfigError(
            f"{field_name}: {folder} is a directory without {CONFIG}: not an avssl encoder folder (avssl export writes one) nor a checkpoint file"
        )
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{field_name}: {path} is not valid JSON ({e})") from None
    version = config.get("format_version") if isinstance(config, dict) else None
    if not isinstance(version, int):
        raise ConfigError(f"{field_name}: {path} has no format_version: not an avssl encoder folder")
    if version > FORMAT_VERSION:
        raise ConfigError(
            f"{field_name}: {folder} is encoder folder format {version} (written by avssl {config.get('avssl_version', '?')}); "
            f"this avssl reads format {FORMAT_VERSION} and older: upgrade avssl"
        )
    if not isinstance(config.get("architecture"), dict):
        raise ConfigError(f"{field_name}: {path} has no architecture: the encoder cannot be rebuilt")
    return config


def read_folder(source: str | Path, field_name: str = "model.encoder_ckpt") -> dict[str, Any]:
    """A checkpoint-shaped dict of an encoder folder or Hub id: ``state_dict``,
    ``hyper_parameters``, ``datamodule_hyper_parameters``, the input spec, and ``folder``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve(source, field_name)
    config = read_config(folder, field_name)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ConfigError(f"{field_name}: {folder} has no {WEIGHTS}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise ConfigError(f"{field_name}: {weights} is not a readable safetensors file ({e})") from None
    projectors = config.get("projectors") or {}
    allowed = ("backbone.", *((projectors["prefix"],) if projectors.get("prefix") in PROJECTOR_PREFIXES else ()))
    unexpected = [k for k in state if not k.startswith(allowed)]
    if unexpected:
        raise ConfigError(
            f"{field_name}: {weights} holds unexpected tensors {unexpected[:5]} ({len(unexpected)}); expected {', '.join(allowed)}*"
        )
    method = config.get("method") or {}
    hyper_parameters = {**(method.get("hyper_parameters") or {}), "backbone": config["architecture"]}
    if method.get("class_path"):
        hyper_parameters["_class_path"] = method["class_path"]
    checkpoint = {
        "state_dict": state,
        "hyper_parameters": hyper_parameters,
        "datamodule_hyper_parameters": (config.get("data") or {}).get("settings") or {},
        "folder": str(folder),
        "weights": str(weights),
        "projectors": projectors,  # empty: exported without them
        "config": config,
    }
    if config.get("input"):
        checkpoint[INPUT_KEY] = config["input"]
    return checkpoint


def write_folder(out: str | Path, state: dict, config: dict[str, Any], results: list[dict] = ()) -> Path:
    """Write ``state`` (tensors), ``config`` and the model card (with the evaluation ``results``)
    to the new folder ``out``, all or nothing: into a temporary sibling first, renamed into place
    at the end. ``out`` must not exist or be empty."""
    import shutil
    import tempfile

    from safetensors.torch import save_file

    import avssl
    from avssl.evaluation.card import model_card

    config = {**config, "avssl_version": avssl.__version__, "format_version": FORMAT_VERSION}
    config["training"] = {**(config.get("training") or {}), "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"DIR: {out} exists and is not an empty folder; choose a new one (nothing was written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp / WEIGHTS), metadata={"format": "pt"})
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        (tmp / CARD).write_text(model_card(config, list(results)))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the files are for sharing
        (tmp / WEIGHTS).chmod(0o666 & ~umask)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
