"""Checkpoints a run can trust: written atomically, read only when they can resume a run.

:class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in the same directory,
``fsync`` s it and renames it over the final name: a crash or a failing write mid-save never
leaves a partial file under the final name, and the previous ``last.ckpt`` stays loadable. It
loads with ``weights_only=True`` only, after :func:`check_training_checkpoint`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from avssl.errors import ConfigError

# What a file that is not a checkpoint most likely is, from its first bytes (a mistyped path)
_MAGIC = (
    (b"RIFF", "a WAV or other RIFF media file"),
    (b"\x1aE\xdf\xa3", "a Matroska / WebM video"),
    (b"OggS", "an Ogg media file"),
    (b"ID3", "an MP3 file"),
    (b"fLaC", "a FLAC file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


def describe_file(path: Path) -> str:
    """What ``path`` looks like when it is not a torch file (a media file, text, empty)."""
    with path.open("rb") as f:
        head = f.read(64)
    if not head:
        return "an empty file"
    if head[4:8] == b"ftyp":
        return "an MP4 / MOV media file"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text or not all(c.isprintable() or c.isspace() for c in text):
        return "a binary file that is neither torch's zip format nor a pickle"
    return f"a text file{' (YAML?)' if path.suffix in ('.yaml', '.yml') else ''}"


def load_checkpoint_file(path, field_name: str, *, mmap: bool = False) -> dict:
    """The checkpoint at ``path`` loaded with ``weights_only=True`` (no pickled code runs), or one
    :class:`ConfigError` naming ``field_name``, the path and what was found there: nothing, a
    directory, a file that is no torch file at all (a media or text file, named as such), a
    truncated or damaged one, one that carries pickled code, or a payload that is not a dict.
    ``mmap``: storages are memory-mapped, not read."""
    import pickle
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{field_name}: {path} is a directory; expected a checkpoint file (.ckpt) that avssl saved")
    if not path.is_file():
        raise ConfigError(f"{field_name}: checkpoint {str(path)!r} does not exist")
    with path.open("rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):  # torch's zip format (whole or cut short), or a pickle
        raise ConfigError(f"{field_name}: {path} is not a checkpoint ({describe_file(path)}); pass a .ckpt file that avssl saved")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:  # weights_only refused what the file holds
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(f"{field_name}: {path} holds pickled code and was refused (nothing from it ran): {first_line}") from None
    except Exception as e:  # torch raises many kinds for a truncated or damaged file
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(
            f"{field_name}: {path} is not a readable checkpoint (truncated or damaged): {type(e).__name__}: {first_line}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise ConfigError(f"{field_name}: {path} holds a {type(checkpoint).__name__}, not a checkpoint")
    return checkpoint


def check_training_checkpoint(path, field_name: str = "ckpt_path") -> None:
    """Refuse, naming ``field_name`` and ``path``, a file that cannot resume a run
    (:func:`load_checkpoint_file`'s cases, or a checkpoint without Lightning's training state, as
    a plain ``state_dict``). Storages are memory mapped, not read."""
    if "://" in str(path):  # a URL: fsspec reads it when the run loads it
        return
    checkpoint = load_checkpoint_file(path, field_name, mmap=True)
    missing = [key for key in ("state_dict", "pytorch-lightning_version") if key not in checkpoint]
    if missing:
        raise ConfigError(
            f"{field_name}: {path} is not a Lightning training checkpoint (no {' / '.join(missing)}; a plain state_dict "
            "cannot resume a run): pass a checkpoint that avssl saved"
        )


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to ``.<name>.tmp-*`` in the target directory, fsync, ``os.replace``; loads
    with ``weights_only=True`` always (a checkpoint carrying pickled code is refused, the code
    never runs)."""

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only: bool | None = None) -> dict[str, Any]:
        check_training_checkpoint(path)
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
