"""Child ``avssl`` processes: the one way a workflow runs another ``avssl`` command.

A fresh process per run, so Lightning's DDP launcher (which re-runs the command line), logging
and CUDA start exactly as they do when a user types the command.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)
ENCODER_FLAG = "--model.init_args.encoder_ckpt"  # the evaluated checkpoint, as every workflow passes it


def run_avssl(args: Sequence[str], *, log_file: Path | None = None) -> int:
    """``avssl ARGS`` in a child process; its output goes to ``log_file`` (overwritten) or to
    this process's console. Returns the exit status."""
    command = [sys.executable, "-m", "avssl", *args]
    log.info("avssl %s", shlex.join(args))
    if log_file is None:
        return subprocess.run(command).returncode
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as out:
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
