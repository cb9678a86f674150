"""Values in plain types (dicts, lists, numbers, strings), for checkpoints that load with
``weights_only=True`` and for JSON."""

from __future__ import annotations

import dataclasses


def plain(value):
    """``value`` with dataclasses turned into dicts, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    return value
