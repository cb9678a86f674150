"""One line for a mistake in a trainer command's options or config files.

jsonargparse reports an unknown or ill-typed option of ``avssl fit`` / ``test`` either after the
whole usage or, for the model (a class chosen by ``class_path``), as a dump of every type it
tried. :func:`explain` turns such an error into one :class:`~avssl.errors.ConfigError`: the option
as the user would write it, what was expected (the closest valid names for a misspelt one) and,
when the option came from a ``--config`` file, that file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from avssl.errors import ConfigError

_UNRECOGNIZED = re.compile(r"unrecognized arguments: (\S+)")
_NOT_ACCEPTED = re.compile(r"does not accept option '([^']+)'|Option '([^']+)' is not accepted")
_GROUP = re.compile(r"Group '([^']+)' does not accept option '([^']+)'")
_CLASS_PATH = re.compile(r"Problem with given class_path '([^']+)'")
_PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
_EXPECTED = re.compile(r"Expected a <class '([^']+)'>\. Got value: (.*)")


def explain(message: str, parser, subcommand: str | None, args: Sequence[str]) -> ConfigError:
    """The one-line error for jsonargparse's ``message`` about ``args`` of ``subcommand``;
    ``parser`` is the main parser (its subcommand parsers list the valid options)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    sub = _subcommand_parser(parser, subcommand)
    class_path = next((m.group(1) for line in lines if (m := _CLASS_PATH.search(line))), None)
    keys = [m.group(1) for line in lines if (m := _PARSER_KEY.search(line))]  # outer first
    # options of a class chosen by class_path: the model's under init_args, a dataclass's directly
    outer = keys[0] if keys else "model"
    prefix = (f"{outer}.init_args." if outer == "model" else f"{outer}.") if class_path else ""
    unknown = _unknown_key(lines)
    if unknown is not None:
        key = prefix + unknown
        known = _class_keys(class_path, prefix) if class_path else _parser_keys(sub)
        where = _source(key, args)
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else ""
        owner = f" ({class_path} takes no such argument)" if class_path else ""
        return ConfigError(f"{where}unknown option {key}{owner}{hint}")
    expected = next((m for line in lines if (m := _EXPECTED.search(line))), None)
    if keys:
        key = prefix + keys[-1] if class_path and len(keys) > 1 else keys[-1]  # keys: outer first
        what = f"expected {expected.group(1)}, got {expected.group(2)!r}" if expected else _last_detail(lines)
        return ConfigError(f"{_source(key, args)}{key}: {what}")
    return ConfigError(_last_detail(lines) or message)


def _unknown_key(lines: list[str]) -> str | None:
    """The dotted key of an unknown option in jsonargparse's lines, innermost first."""
    for line in reversed(lines):
        if m := _GROUP.search(line):
            return f"{m.group(1)}.{m.group(2)}"
        if m := _NOT_ACCEPTED.search(line):
            return m.group(1) or m.group(2)
        if m := _UNRECOGNIZED.search(line):
            return m.group(1).split("=", 1)[0].lstrip("-")
    return None


def _last_detail(lines: list[str]) -> str:
    details = [
        line
        for line in lines
        if not line.startswith(("Parser key", "Given value", "Subtypes", "Errors", "- Expected a <class 'NoneType'>"))
    ]
    return details[-1].lstrip("- ") if details else ""


def _subcommand_parser(parser, subcommand: str | None):
    subcommands = getattr(parser, "_subcommands_action", None)
    if subcommand and subcommands is not None:
        return subcommands._name_parser_map.get(subcommand, parser)
    return parser


def _parser_keys(parser) -> list[str]:
    return [action.dest for action in parser._actions if action.dest and "." in action.dest]


def _class_keys(class_path: str, prefix: str) -> list[str]:
    """The options of the class at ``class_path`` (nested dataclasses included), prefixed."""
    import importlib

    from jsonargparse import ArgumentParser

    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(cls, "x", fail_untyped=False)
    except Exception:  # the suggestion is a courtesy: the error stands without it
        return []
    return [prefix + action.dest.removeprefix("x.") for action in parser._actions if action.dest.startswith("x.")]


def _source(key: str, args: Sequence[str]) -> str:
    """``"FILE: "`` when the last of ``args`` to set ``key`` is a ``--config`` file, else ``""``
    (a flag, or not found)."""
    parts = key.split(".")
    flags = {f"--{key}", f"--{key.replace('.init_args.', '.', 1)}"}
    source = ""
    for i, arg in enumerate(args):
        if arg.split("=", 1)[0] in flags:
            source = ""
        name = (
            args[i + 1]
            if arg in ("--config", "-c") and i + 1 < len(args)
            else arg.split("=", 1)[1]
            if arg.startswith("--config=")
            else None
        )
        if name is not None and _sets(_load(name), parts):
            source = f"{name}: "
    return source


def _load(name: str):
    import yaml

    try:
        return yaml.safe_load(Path(name).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None


def _sets(content, parts: list[str]) -> bool:
    """Whether the YAML mapping ``content`` sets the dotted ``parts`` (a model's ``init_args``
    may be written or left out)."""
    if not parts:
        return True
    if not isinstance(content, dict):
        return False
    head, rest = parts[0], parts[1:]
    if head == "init_args" and "init_args" not in content:
        return _sets(content, rest)
    return head in content and _sets(content[head], rest)


def user_error(error: BaseException | None) -> ConfigError | None:
    """The :class:`ConfigError` behind ``error``, if any (jsonargparse wraps errors raised while
    it instantiates a class in its own ``ValueError``); Lightning's ``MisconfigurationException``
    (a trainer setting this machine or model cannot run, such as GPUs where there are none) is
    one too."""
    import pickle

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConfigError):
            return error
        if any(cls.__name__ == "MisconfigurationException" for cls in type(error).__mro__):
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            hint = (
                "; this machine has no GPU the config asks for (e.g. trainer/ddp.yaml): use --trainer.accelerator=cpu, "
                "or leave that config out"
                if "gpu" in first_line.lower() or "cuda" in first_line.lower()
                else ""
            )
            return ConfigError(f"trainer: {first_line}{hint}")
        if isinstance(error, pickle.UnpicklingError):  # torch.load(weights_only=True) refused a file
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            return ConfigError(f"checkpoint refused: not a weights-only checkpoint (it may carry code; nothing from it ran): {first_line}")
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
