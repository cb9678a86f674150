"""Command-line flags generated from a dataclass: one ``--field-name`` per field, typed and
defaulted by the field, documented by the class docstring's ``Args:`` section, so a setting is
typed once (in its dataclass) and reaches the command line from there."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing


def field_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from a Google-style ``Args:`` section of ``cls``'s docstring."""
    doc = cls.__doc__ or ""
    if "Args:" not in doc:
        return {}
    docs: dict[str, str] = {}
    name = None
    for line in doc.split("Args:", 1)[1].splitlines():
        match = re.match(r"^\s{4,8}(\w+):\s*(.*)$", line)
        if match:
            name, text = match.groups()
            docs[name] = text
        elif name and line.strip():
            docs[name] += " " + line.strip()
        elif not line.strip() and docs:
            name = None
    return docs


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """``--field-name`` flags for every field of the dataclass ``cls`` (int, float, str, bool)."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if type(None) in typing.get_args(kind):  # X | None: an X, None when not given
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        flag = "--" + field.name.replace("_", "-")
        text = docs.get(field.name, "").rstrip(".").replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=field.default, help=text)
        else:
            default = "" if field.default is None else f" (default {field.default})"
            parser.add_argument(flag, dest=field.name, type=kind, default=field.default, help=f"{text}{default}")


def dataclass_from(ns: argparse.Namespace, cls: type):
    """An instance of ``cls`` from the flags :func:`add_dataclass_arguments` added."""
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)})
