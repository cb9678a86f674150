"""The run's guard: start-up checks and the end-of-fit summary.

:class:`RunGuard` (added to every ``avssl fit`` by the CLI) checks at start-up that the
checkpoint directory is writable (failing loudly before the first epoch, not after it), counts
the data counters of every batch on the device (no host sync per step), and at the end of the
fit — finished or failed — logs a summary and writes ``fit_summary.json`` next to the
checkpoints: files skipped when indexing by reason, samples that failed to decode, repaired
audio, short videos, whether the run resumed and from where, and how it ended.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from avssl.errors import ConfigError

log = logging.getLogger(__name__)
SUMMARY = "fit_summary.json"


def checkpoint_dir(trainer: pl.Trainer) -> Path | None:
    callback = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    if callback is None:
        return None
    if callback.dirpath is not None:
        return Path(callback.dirpath)
    root = trainer.log_dir or trainer.default_root_dir
    return Path(root) / "checkpoints"


def check_writable(directory: Path) -> None:
    """Create ``directory`` and write a probe file there, or raise :class:`ConfigError`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ConfigError(
            f"trainer.callbacks (ModelCheckpoint.dirpath): cannot write checkpoints to {directory}: {e.strerror or e}"
        ) from None


START_FILES = ("config.yaml", "hparams.yaml", "events.out.tfevents.*")  # what a run's log directory holds before its first step


def remove_empty_log_dir(trainer: pl.Trainer) -> None:
    """Remove the logger's ``version_N`` directory of a fit that failed before its first step,
    when it holds only what every run writes at start (so a failed start leaves no run behind)."""
    logger = trainer.logger
    log_dir = Path(logger.log_dir) if logger is not None and getattr(logger, "log_dir", None) else None
    if log_dir is None or not log_dir.is_dir():
        return
    entries = list(log_dir.iterdir())
    if all(e.is_file() and any(e.match(pattern) for pattern in START_FILES) for e in entries):
        shutil.rmtree(log_dir, ignore_errors=True)
        if log_dir.parent.is_dir() and not any(log_dir.parent.iterdir()):  # runs/<name>, when this run made it
            log_dir.parent.rmdir()
        log.info("removed %s: the run failed before its first step", log_dir)


def save_interrupted(trainer: pl.Trainer) -> None:
    """On Ctrl-C, save the run as it stands to the ``last`` checkpoint of each
    :class:`ModelCheckpoint` that keeps one, so ``--ckpt_path last`` resumes from here and not from
    the last epoch's end. Written by this process alone (no barrier: other ranks may be gone);
    the step being interrupted may be half applied, as after any interrupt."""
    callbacks = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.save_last and c.dirpath]
    if not callbacks:
        return
    checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
    for callback in callbacks:  # their dirpath is resolved when the fit is set up
        path = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        try:
            trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, path)
        except Exception as e:  # never mask the interrupt
            log.warning("could not save %s on the interrupt: %s", path, e)
            continue
        log.info("interrupted at step %d: saved %s (resume with --ckpt_path last)", trainer.global_step, path)


class RunGuard(pl.Callback):
    """Start-up checks and the end-of-fit failure summary (see the module docstring)."""

    def __init__(self) -> None:
        self.totals: dict[str, torch.Tensor] = {}
        self.resumed_from: str | None = None
        self.status = "not started"

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        directory = checkpoint_dir(trainer)
        if directory is not None and trainer.is_global_zero:
            check_writable(directory)
        self.resumed_from = str(trainer.ckpt_path) if trainer.ckpt_path else None
        self.status = "running"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not isinstance(batch, dict):
            return
        for key, value in batch.items():
            if key.startswith("num_") and torch.is_tensor(value):
                name = key[4:]
                self.totals[name] = self.totals.get(name, torch.zeros((), dtype=torch.long, device=value.device)) + value.detach()

    def on_fit_end(self, trainer, pl_module) -> None:
        self.status = "finished"
        self._write(trainer, gather=True)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if trainer.global_step == 0 and trainer.is_global_zero:
            remove_empty_log_dir(trainer)
        if self.status == "not started":  # not a fit (avssl test / validate / predict), or it never began
            return
        if isinstance(exception, KeyboardInterrupt):
            self.status = "interrupted"
            if trainer.global_step > 0 and trainer.is_global_zero:
                save_interrupted(trainer)
        else:
            self.status = f"failed: {type(exception).__name__}: {exception}"
        self._write(trainer, gather=False)  # other ranks may be gone: this rank's counts only

    def summary(self, trainer: pl.Trainer, *, gather: bool = True) -> dict:
        totals = {k: int(v) for k, v in self.totals.items()}
        if gather and trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, totals)
            totals = {k: sum(g.get(k, 0) for g in gathered) for k in set().union(*gathered)}
        skipped: dict[str, dict] = {}  # per dataset (its split in words): counts by reason and every file named
        datamodule = getattr(trainer, "datamodule", None)
        for key, dataset in getattr(datamodule, "datasets", {}).items():
            if getattr(dataset, "skipped", None):
                skipped[key] = {"by_reason": dict(dataset.skipped), "files": dict(dataset.skipped_files)}
        return {
            "status": self.status,
            "log_dir": trainer.log_dir,  # where the run logs: a resume continues there
            "resumed_from": self.resumed_from,
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "skipped_when_indexing": skipped,
            "batch_counters": totals,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def _write(self, trainer: pl.Trainer, *, gather: bool) -> None:
        try:
            summary = self.summary(trainer, gather=gather)
        except Exception as e:  # never mask the run's own error
            log.warning("fit summary unavailable: %s", e)
            return
        if not trainer.is_global_zero:
            return
        log.info(
            "fit %s at step %d: skipped when indexing %s, batch counters %s%s",
            summary["status"],
            summary["global_step"],
            summary["skipped_when_indexing"] or "none",
            summary["batch_counters"] or "none",
            f", resumed from {summary['resumed_from']}" if summary["resumed_from"] else "",
        )
        directory = checkpoint_dir(trainer)
        if directory is None or trainer.fast_dev_run:  # fast_dev_run writes no checkpoints, nor this
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / SUMMARY).write_text(json.dumps(summary, indent=2))
        except OSError as e:
            log.warning("could not write %s: %s", directory / SUMMARY, e)
