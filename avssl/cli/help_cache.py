"""The trainer commands' ``--help`` without loading torch: written once, then read from a cache.

``avssl fit --help`` (and ``validate`` / ``test`` / ``predict``) is LightningCLI's parser, built
from the signatures of the model, the data module and the ``Trainer``, which takes torch and
Lightning seconds to import. The text is stored under ``$AVSSL_CACHE/help`` (``~/.cache/avssl``
by default), keyed by everything it is made from: the command, the installed versions of avssl,
Lightning and jsonargparse and the avssl sources' modification times; the text is laid out
:data:`WIDTH` columns wide whatever the terminal. Only the bare ``avssl COMMAND --help`` is cached
(a ``--config`` changes the text). :func:`avssl.cli.trainer.cache_help` writes every trainer
command's (``make install`` calls it, so even the first ``--help`` is quick).
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path

from avssl.utils.cache import cache_dir

HELP_FLAGS = ("-h", "--help")
WIDTH = 100  # columns of the cached text (argparse reads $COLUMNS)


def cache_path(command: str) -> Path:
    """Where the help text of ``command`` is kept for this installation and terminal width."""
    key = hashlib.sha1()
    for package in ("avssl", "pytorch-lightning", "jsonargparse"):
        try:
            key.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            key.update(f"{package}=none;".encode())
    sources = Path(__file__).resolve().parents[1]  # the avssl package
    for path in sorted(sources.rglob("*")):
        if path.suffix in (".py", ".yaml"):
            key.update(f"{path.relative_to(sources)}:{path.stat().st_mtime_ns};".encode())
    return cache_dir("help", f"{command}-{key.hexdigest()[:16]}.txt")


def read(command: str) -> str | None:
    try:
        return cache_path(command).read_text()
    except OSError:
        return None


def write(command: str, text: str) -> None:
    """Keep ``text`` (an unwritable cache only costs the next call its start-up)."""
    path = cache_path(command)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        pass
