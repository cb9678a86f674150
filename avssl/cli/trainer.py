"""The trainer commands (``avssl fit`` / ``validate`` / ``test`` / ``predict``): LightningCLI with
avssl's settings, config-file checks and the cached ``--help``.

``instantiate`` builds the model, the data module and the trainer of a config without running
anything (notebooks and benchmarks). :func:`cache_help` writes the help cache of every trainer
command (``make install`` calls it, so even the first ``--help`` is quick).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from avssl.cli import help_cache
from avssl.cli.bundled import PRETRAIN_BASE, resolve
from avssl.cli.commands import TRAINER_COMMANDS
from avssl.cli.config_errors import explain, user_error
from avssl.errors import ConfigError

log = logging.getLogger(__name__)
STRICT_PARSER = {"exit_on_error": False, "allow_abbrev": False}


def _lightning_cli(args: Sequence[str] | None, *, run: bool = True):
    from pytorch_lightning import LightningModule
    from pytorch_lightning.cli import LightningCLI

    from avssl.data.datamodule import AVDataModule

    class AvsslCLI(LightningCLI):
        def add_arguments_to_parser(self, parser) -> None:
            # Derived once from the data, never typed twice.
            parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")

        def parse_arguments(self, parser, args) -> None:
            try:
                super().parse_arguments(parser, args)
            except argparse.ArgumentError as e:  # one line naming the option (and its file), no usage dump
                given = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else []
                subcommand = given[0] if given and given[0] in TRAINER_COMMANDS else None
                raise explain(str(e), parser, subcommand, given) from None
            # What the user set (config files and command line), without defaults: an evaluation
            # takes every other input setting from the encoder's checkpoint.
            self.explicit = parser.parse_args(args, defaults=False) if not isinstance(args, dict) else self.config

        def _parse_ckpt_path(self) -> None:  # Lightning reads --ckpt_path's hyper-parameters here first
            subcommand = self.config.get("subcommand")
            if subcommand and self.config[subcommand].get("ckpt_path") not in (None, "last", "best", "hpc", "registry"):
                from avssl.reliability import check_training_checkpoint

                check_training_checkpoint(self.config[subcommand].ckpt_path)
            super()._parse_ckpt_path()

        def before_instantiate_classes(self) -> None:
            if self.subcommand == "test":
                apply_encoder_settings(self.config.test, self.explicit.get("test"))
            if self.subcommand in ("fit", None):
                name_logger_after_method(self.config.fit if self.subcommand else self.config)
            if self.subcommand == "fit":
                continue_run(self.config.fit)

        def instantiate_trainer(self, **kwargs):
            from pytorch_lightning.callbacks import TQDMProgressBar

            from avssl.callbacks import LoggingStepProgressBar
            from avssl.reliability import AtomicCheckpointIO, RunGuard

            trainer = super().instantiate_trainer(**kwargs)
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()  # no partial file under a final name
            # Lightning's default bar, refreshed on the logging steps (the metrics are read from the device then)
            trainer.callbacks = [LoggingStepProgressBar() if type(c) is TQDMProgressBar else c for c in trainer.callbacks]
            trainer.callbacks.append(RunGuard())  # start-up checks + fit_summary.json
            return trainer

        def before_fit(self) -> None:
            # Lightning drops the flag silently on one device and fails mid-step under DDP on CPU.
            if self.config[self.subcommand].trainer.sync_batchnorm and self.trainer.strategy.root_device.type == "cpu":
                from avssl.methods.base import SYNC_BN_ON_CPU

                raise ConfigError(SYNC_BN_ON_CPU)

        def fit(self, model, **kwargs) -> None:
            """``Trainer.fit``; a run interrupted by Ctrl-C (Lightning exits with status 1 after its
            graceful shutdown, in which :class:`~avssl.reliability.RunGuard` saved a resumable
            checkpoint) ends with status 130, as an interrupted command does."""
            try:
                self.trainer.fit(model, **kwargs)
            except SystemExit:
                if self.trainer.interrupted:
                    raise SystemExit(130) from None
                raise

        def test(self, model, datamodule=None, ckpt_path=None, verbose=True, **kwargs) -> None:
            """A linear probe trains (``Trainer.fit``) before it is tested; ``--ckpt_path`` resumes
            the probe's training. Any other model is tested as it is."""
            from avssl.evaluation import EncoderEvaluation, linear_evaluation

            if isinstance(model, EncoderEvaluation):
                linear_evaluation(self.trainer, model, datamodule, ckpt_path=ckpt_path)
            else:
                self.trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=verbose, **kwargs)

    return AvsslCLI(
        LightningModule,
        AVDataModule,
        subclass_mode_model=True,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "avssl", **STRICT_PARSER, **{name: dict(STRICT_PARSER) for name in TRAINER_COMMANDS}},
    )


def name_logger_after_method(config) -> None:
    """A logger whose ``name`` is null (the bundled base's) is named after the method, so runs of
    ``simclr.yaml`` log to ``runs/simclr/version_N``, those of ``byol.yaml`` to ``runs/byol/...``."""
    logger, model = config.get("trainer.logger"), config.get("model")
    init_args = getattr(logger, "init_args", None)
    if init_args is not None and "name" in init_args and init_args.name is None and getattr(model, "class_path", None):
        init_args.name = model.class_path.rsplit(".", 1)[-1].lower()


def continue_run(config) -> None:
    """``avssl fit ... --ckpt_path last`` (or a checkpoint path) continues the run the checkpoint
    belongs to: a logger without a fixed version takes that run's ``version_N`` folder, where its
    checkpoints, logs and summary stay and where ``last`` is looked up; ``last`` with nothing to
    resume is an error, never a silent fresh start."""
    ckpt = config.get("ckpt_path")
    logger = getattr(config.get("trainer.logger"), "init_args", None)
    if ckpt in (None, "best", "hpc", "registry") or logger is None or not all(k in logger for k in ("save_dir", "name", "version")):
        return
    runs = Path(logger.save_dir or ".") / (logger.name or "")
    checkpoints = next((c.init_args for c in config.get("trainer.callbacks") or [] if str(c.class_path).endswith("ModelCheckpoint")), None)
    dirpath = Path(checkpoints.dirpath) if checkpoints is not None and checkpoints.dirpath else None
    versions = sorted((_version(d), d) for d in runs.glob("version_*") if _version(d) is not None)
    if ckpt == "last":
        holding = [c for c in ([dirpath] if dirpath else [d / "checkpoints" for _, d in versions]) if any(c.glob("last*.ckpt"))]
        if not holding:
            where = dirpath or runs / "version_*" / "checkpoints"
            raise ConfigError(f"ckpt_path: last: no last.ckpt in {where}, nothing to resume (leave --ckpt_path out to start a new run)")
        version = _written_by(dirpath, runs) if dirpath else _version(holding[-1].parent)
    else:
        inside = [n for n, d in versions if d.resolve() in Path(ckpt).resolve().parents]
        version = (
            inside[0] if inside else _written_by(dirpath, runs) if dirpath and dirpath.resolve() in Path(ckpt).resolve().parents else None
        )
    if logger.version is None and version is not None:
        logger.version = version


def _written_by(dirpath: Path, runs: Path) -> int | None:
    """The version of the run that last wrote checkpoints to ``dirpath`` (its summary says), if it logged under ``runs``."""
    from avssl.reliability.summary import SUMMARY

    try:
        log_dir = Path(json.loads((dirpath / SUMMARY).read_text())["log_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _version(log_dir) if log_dir.parent.resolve() == runs.resolve() else None


def _version(run_dir: Path) -> int | None:
    """``N`` of a logger's ``version_N`` folder."""
    number = run_dir.name.removeprefix("version_")
    return int(number) if run_dir.name.startswith("version_") and number.isdigit() else None


def apply_encoder_settings(config, explicit) -> None:
    """For a linear probe with ``model.init_args.encoder_ckpt``: set the data settings the encoder
    was pre-trained with (its input and dataset, :func:`avssl.evaluation.encoder.encoder_settings`)
    in ``config`` where the user set none; the probe checks the rest against the encoder."""
    from jsonargparse import Namespace

    from avssl.evaluation.base import EncoderEvaluation
    from avssl.evaluation.encoder import encoder_settings, leaves, read_checkpoint

    model = config.model
    try:
        cls = _import(model.class_path)
    except (AttributeError, ImportError):
        return
    if not (isinstance(cls, type) and issubclass(cls, EncoderEvaluation)) or not model.init_args.encoder_ckpt:
        return
    path = model.init_args.encoder_ckpt
    checkpoint = read_checkpoint(path)
    if not checkpoint.get("datamodule_hyper_parameters"):
        log.warning("%s carries no data settings (an older checkpoint): the evaluation uses the configured ones as they are", path)
        return
    given = explicit.get("data") if isinstance(explicit, Namespace) else None
    given = leaves(given.as_dict() if isinstance(given, Namespace) else {})
    for key, value in encoder_settings(checkpoint, given).items():
        config[f"data.{key}"] = value


def _import(class_path: str):
    import importlib

    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def instantiate(args: Sequence[str]):
    """``(model, datamodule, trainer)`` from config arguments without running anything, e.g.
    ``instantiate(["--config", "configs/simclr.yaml", "--config", "configs/demo.yaml"])``
    (the ``fit`` options without the ``fit`` word; for notebooks and benchmarks)."""
    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns when a script's own argv is present too
    try:
        cli = _lightning_cli(config_files(["--config", str(PRETRAIN_BASE), *args]), run=False)
    except Exception as e:
        fixable = user_error(e)
        if fixable is None:
            raise
        raise fixable from None
    finally:
        sys.argv = argv
    return cli.model, cli.datamodule, cli.trainer


def trainer_command(args: Sequence[str]) -> None:
    """Run a trainer command (``args[0]``) with LightningCLI."""
    base = ["--config", str(PRETRAIN_BASE)] if args[0] == "fit" and args[1:3] != ["--config", str(PRETRAIN_BASE)] else []
    resolved = [args[0], *config_files([*base, *args[1:]])]  # base: pre-training's shared trainer
    # LightningCLI reads the resolved arguments from sys.argv, and so do the processes that
    # Lightning's DDP launcher starts (it re-runs this command with sys.argv)
    argv, sys.argv = sys.argv, [sys.argv[0], *resolved]
    try:
        _lightning_cli(None)
    finally:
        sys.argv = argv


def trainer_help(command: str) -> str:
    """``avssl COMMAND --help`` of a trainer command: from the cache, else built (and kept)."""
    import contextlib
    import io
    import os

    text = help_cache.read(command)
    if text is None:
        out, columns = io.StringIO(), os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(help_cache.WIDTH)  # the same layout whoever builds it
        try:
            with contextlib.redirect_stdout(out):
                trainer_command([command, "--help"])
        except SystemExit as e:
            if e.code:
                raise
        finally:
            if columns is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = columns
        text = out.getvalue()
        help_cache.write(command, text)
    return text


def config_files(args: Sequence[str]) -> list[str]:
    """``args`` with every ``--config NAME`` / ``-c NAME`` resolved (a file, else a bundled config:
    :func:`avssl.cli.bundled.resolve`) and checked: it must hold a YAML mapping of settings; the error
    names the file and what is wrong with it (where the parser would print its whole usage)."""
    out, args = [], list(args)
    for i, arg in enumerate(args):
        if arg.startswith("--config="):
            arg = f"--config={_checked_config(resolve(arg.split('=', 1)[1]), arg.split('=', 1)[1])}"
        elif i > 0 and args[i - 1] in ("--config", "-c"):
            arg = str(_checked_config(resolve(arg), arg))
        out.append(arg)
    return out


def _checked_config(path: Path, name: str) -> Path:
    import yaml

    if not path.is_file():
        raise ConfigError(f"--config {name}: not a file")
    try:
        content = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"--config {name}: not a text file; expected a YAML file of settings") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        raise ConfigError(f"--config {name}: not valid YAML{line}: {getattr(e, 'problem', None) or str(e).splitlines()[0]}") from None
    if content is not None and not isinstance(content, dict):
        raise ConfigError(
            f"--config {name}: expected a YAML mapping of settings (e.g. `trainer:`, `model:`), got a {type(content).__name__}"
        )
    return path


def cache_help() -> None:
    """Write the help cache of every trainer command."""
    for name in TRAINER_COMMANDS:
        trainer_help(name)
