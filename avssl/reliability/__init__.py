"""Run safety: what keeps a long run from losing work or reporting numbers it should not.

* :mod:`~avssl.reliability.checkpoints`: atomic checkpoint writes, and the checks a checkpoint
  passes before a run resumes from it (:class:`AtomicCheckpointIO`, :func:`check_training_checkpoint`);
* :mod:`~avssl.reliability.finite`: stopping on a non-finite loss without a host synchronisation
  per step, and refusing weights that are not finite (:class:`FiniteGuard`, :func:`refuse_nonfinite`);
* :mod:`~avssl.reliability.summary`: the start-up checks and the end-of-fit summary
  (``fit_summary.json``) of every ``avssl fit`` (:class:`RunGuard`).
"""

from avssl.reliability.checkpoints import AtomicCheckpointIO, check_training_checkpoint
from avssl.reliability.finite import FiniteGuard, NonFiniteLossError, logging_step, refuse_nonfinite
from avssl.reliability.summary import RunGuard

__all__ = [
    "AtomicCheckpointIO",
    "FiniteGuard",
    "NonFiniteLossError",
    "RunGuard",
    "check_training_checkpoint",
    "logging_step",
    "refuse_nonfinite",
]
