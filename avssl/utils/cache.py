"""avssl's cache directory: ``$AVSSL_CACHE``, else ``~/.cache/avssl`` (no torch: the command
line's help reads it)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$AVSSL_CACHE/<parts...>`` (``~/.cache/avssl`` when ``AVSSL_CACHE`` is unset)."""
    return Path(os.environ.get("AVSSL_CACHE", Path.home() / ".cache" / "avssl"), *parts)
