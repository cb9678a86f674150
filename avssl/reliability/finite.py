"""Stopping on non-finite losses without a host synchronisation per step, and refusing
checkpoints with non-finite weights.

A training step's loss lives on the device; asking the host whether it is finite every step
would make the CPU wait for the GPU at every step. :class:`FiniteGuard` keeps the number of the
first non-finite step on the device (one ``where`` per step) and reads it on the host only on
Lightning's logging steps (which read the logged metrics anyway) and at the end of each epoch;
the error names that step and the videos of its batch. The step's update is then already applied
(and up to ``log_every_n_steps - 1`` more): resume from the last checkpoint
(docs/guides/reliability.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch

from avssl.errors import ConfigError


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN / inf loss (names the step and the batch's videos)."""


def logging_step(trainer: pl.Trainer | None) -> bool:
    """Whether this training step ends with Lightning writing the logged metrics (every
    ``trainer.log_every_n_steps`` steps); always for a step run outside a Lightning trainer."""
    connector = getattr(trainer, "_logger_connector", None)
    return True if connector is None else bool(connector.should_update_logs)


class FiniteGuard:
    """Watches one loss. ``what`` names it in the error (``training loss``, ``probe loss``)."""

    def __init__(self, what: str, remedy: str):
        self.what, self.remedy = what, remedy
        self._first_bad: torch.Tensor | None = None  # device int64: first non-finite step, -1 if none
        self._videos: dict[int, list[str]] = {}  # host: the videos of each step since the last check

    def record(self, loss: torch.Tensor, step: int, video_ids: Sequence[str] = ()) -> None:
        """Note whether ``loss`` (of training step ``step``) is finite, on the device."""
        bad = ~torch.isfinite(loss.detach())
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        here = torch.full((), step, dtype=torch.long, device=loss.device)  # a fill, not a copy
        self._first_bad = torch.where(bad & (self._first_bad < 0), here, self._first_bad)
        self._videos[step] = list(video_ids)

    def check(self) -> None:
        """Raise :class:`NonFiniteLossError` if a recorded loss was not finite (one host read)."""
        if self._first_bad is None:
            return
        first, videos = int(self._first_bad), self._videos
        self._first_bad, self._videos = None, {}
        if first >= 0:
            raise NonFiniteLossError(f"non-finite {self.what} at step {first}, batch of videos {videos.get(first, [])}; {self.remedy}")


def refuse_nonfinite(state: dict, source: str) -> None:
    """Refuse a state dict holding NaN / inf weights or buffers (a corrupted or diverged
    checkpoint), naming the tensors: evaluated, it would give chance-level numbers that look real."""
    bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ConfigError(
            f"{source} has non-finite values (NaN / inf) in {len(bad)} tensor(s): {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}; the checkpoint is corrupted or its run diverged"
        )
