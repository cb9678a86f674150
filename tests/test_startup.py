"""The command line's help and listings start without torch (they are what a new user runs first)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from avssl.cli import COMMANDS

PROBE = """
import sys
from avssl.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchaudio", "torchvision", "pytorch_lightning", "lightning"))
print("HEAVY", heavy)
"""
EXTRA = [name for name, command in COMMANDS.items() if command.module is not None]


@pytest.mark.parametrize("args", [["--help"], ["configs"], *([name, "--help"] for name in EXTRA), ["transfer", "linear", "--help"]])
def test_help_and_listings_do_not_import_torch(args):
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY []", done.stdout[-500:]


def test_import_avssl_is_light_until_a_name_is_used():
    code = "import sys, avssl; a = 'torch' in sys.modules; avssl.SimCLR; print(a, 'torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "True"]


def test_every_command_is_in_the_usage_and_each_flag_of_prepare_comes_from_its_dataclass(capsys):
    import dataclasses

    from avssl.cli import main
    from avssl.data.formats import PrepareConfig

    main(["--help"])
    usage = capsys.readouterr().out
    assert all(f"  {name} " in usage for name in COMMANDS)
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    text = capsys.readouterr().out
    assert all(f"--{f.name.replace('_', '-')}" in text for f in dataclasses.fields(PrepareConfig))


def test_a_trainer_commands_help_is_kept_and_then_starts_without_torch(tmp_path):
    """``avssl fit --help`` builds LightningCLI's parser once (torch, seconds), keeps its text in
    the cache, and prints the same text from it afterwards without importing torch."""
    import os

    env = {**os.environ, "AVSSL_CACHE": str(tmp_path), "COLUMNS": "60"}
    first = subprocess.run([sys.executable, "-m", "avssl", "fit", "--help"], env=env, capture_output=True, text=True)
    assert first.returncode == 0 and "--data.batch_size" in first.stdout, first.stderr[-500:]
    again = subprocess.run([sys.executable, "-c", PROBE, "fit", "--help"], env={**env, "COLUMNS": "200"}, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-500:]
    text, _, heavy = again.stdout.rpartition("HEAVY ")
    assert heavy.strip() == "[]" and text == first.stdout  # the same text (a fixed width), no torch
    assert len(list((tmp_path / "help").iterdir())) == 1
