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


def check_training_checkpoint(path, field_name: str = "ckpt_path") -> None:
    """Refuse, naming ``field_name`` and ``path``, a file that cannot resume a run: missing,
    truncated or not a torch file, carrying pickled code (``weights_only`` refuses it, nothing
    runs), or without Lightning's training state (a plain ``state_dict``). Storages are memory
    mapped, not read."""
    import pickle
    import zipfile

    if "://" in str(path):  # a URL: fsspec reads it when the run loads it
        return
    if not Path(path).is_file():
        raise ConfigError(f"{field_name}: checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        raise ConfigError(f"{field_name}: {path} is not a weights-only checkpoint and was refused (it may carry code): {e}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:  # a truncated or foreign file
        first_line = str(e).splitlines()[0] if str(e) else ""
        raise ConfigError(
            f"{field_name}: {path} is not a readable checkpoint (truncated, or not a torch file): {type(e).__name__}: {first_line}"
        ) from None
    missing = [key for key in ("state_dict", "pytorch-lightning_version") if not isinstance(checkpoint, dict) or key not in checkpoint]
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
