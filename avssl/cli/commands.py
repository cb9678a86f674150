"""The ``avssl`` commands, in one table (:data:`COMMANDS`).

The trainer commands (fit / validate / test / predict) run LightningCLI
(:mod:`avssl.cli.trainer`); every other command is a module with ``add_arguments(parser)`` and
``run(namespace)``, named here and imported only when that command runs, so ``avssl --help``,
``avssl configs`` and each command's ``--help`` start without torch.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One ``avssl`` command: its one-line help and, unless it is a trainer command, the module
    holding its ``add_arguments`` / ``run``; ``passthrough`` commands hand the arguments after
    ``--`` to the runs they start (``namespace.extra``)."""

    help: str
    module: str | None = None
    passthrough: bool = False


COMMANDS = {
    "fit": Command("pre-train a method (configs/<method>.yaml) or fit a model"),
    "validate": Command("run the validation loop"),
    "test": Command("linear evaluation of a pre-trained encoder (configs/linear.yaml)"),
    "predict": Command("run the predict loop"),
    "configs": Command("list the bundled configs, or print one (avssl configs simclr > my.yaml)", "avssl.cli.bundled"),
    "synth": Command("write the synthetic audiovisual dataset to a directory", "avssl.prepare.synthetic"),
    "prepare": Command("re-encode a dataset once into a training-friendly copy (SRC DST)", "avssl.prepare.command"),
    "grid": Command("run table cells (configs/paper/<table>): pre-train, then linear evaluation", "avssl.workflows.grid"),
    "export": Command("write a pre-training checkpoint as a shareable encoder folder (CKPT DIR)", "avssl.workflows.export"),
    "report": Command("tables and figures in the paper's layout from a runs directory", "avssl.paper.report"),
    "transfer": Command(
        "transfer evaluations on UCF101 / HMDB51 / ESC-50 / VGGSound: linear, knn, finetune, retrieval; --split all",
        "avssl.workflows.transfer",
        passthrough=True,
    ),
}


TRAINER_COMMANDS = [name for name, command in COMMANDS.items() if command.module is None]


def run_command(name: str, args: Sequence[str]) -> int:
    """Parse ``args`` with the command's own parser and run it; returns the exit status."""
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    parser = argparse.ArgumentParser(prog=f"avssl {name}", description=command.help)
    module.add_arguments(parser)
    args = list(args)
    cut = args.index("--") if command.passthrough and "--" in args else len(args)
    ns = parser.parse_args(args[:cut])
    if command.passthrough:
        ns.extra = args[cut + 1 :]
    code = module.run(ns)  # an exit status, or None (or a result for Python callers) when it succeeded
    return code if isinstance(code, int) else 0
