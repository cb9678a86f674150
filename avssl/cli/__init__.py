"""The ``avssl`` command line: :func:`main` dispatches to the command table
(:mod:`avssl.cli.commands`); the trainer commands run LightningCLI (:mod:`avssl.cli.trainer`).

Tests call :func:`main` with a list of arguments. Mistakes a user can fix (a missing data root,
a bad value) end with one ``avssl: error: ...`` line and exit status 2, not a traceback.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence

from avssl.cli import help_cache
from avssl.cli.commands import COMMANDS, run_command
from avssl.cli.config_errors import user_error
from avssl.cli.trainer import instantiate, trainer_command, trainer_help
from avssl.errors import ConfigError

__all__ = ["COMMANDS", "instantiate", "main", "run_command"]


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (notebooks and test runners replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; ignored
        pass


def _log_to_stderr() -> None:
    """Show avssl's INFO lines (dataset builds, skipped files, result paths) on the console."""
    logger = logging.getLogger("avssl")
    if not logger.handlers:
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("[avssl] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


# Lines every run printed that tell a user nothing about their run: Lightning's advertisement
# for its cloud logger, torch's deprecation of a pytree class that Lightning itself uses, and
# Lightning's note that the model makes the batches' views (avssl's design: views belong to
# their consumer, the data module loads clips).
_NOISE_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")


def _no_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in record.getMessage()


def _quiet_third_party() -> None:
    for name in _NOISE_LOGGERS:
        logger = logging.getLogger(name)
        if _no_advert not in logger.filters:
            logger.addFilter(_no_advert)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer` in `LightningModule` but have passed in a")


def _usage() -> str:
    lines = [f"usage: avssl {{{','.join(COMMANDS)}}} ...", "", "commands:"]
    lines += [f"  {name:<9} {command.help}" for name, command in COMMANDS.items()]
    lines += ["", "`avssl COMMAND --help` lists the options of a command; the documentation (docs/, or `make docs`) has the guides."]
    return "\n".join(lines)


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``avssl`` console script and ``python -m avssl``."""
    args = list(sys.argv[1:] if args is None else args)
    _log_to_stderr()
    _quiet_third_party()
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return
    try:
        if args[0] not in COMMANDS:
            raise ConfigError(f"unknown command {args[0]!r}; choose from {', '.join(COMMANDS)}")
        if COMMANDS[args[0]].module is not None:
            code = run_command(args[0], args[1:])
            if code:
                raise SystemExit(code)
        elif len(args) == 2 and args[1] in help_cache.HELP_FLAGS:
            print(trainer_help(args[0]), end="")
            raise SystemExit(0)  # as argparse ends a --help
        else:
            trainer_command(args)
    except Exception as e:
        fixable = user_error(e)
        if fixable is None:
            raise
        print(f"avssl: error: {fixable}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()
