"""Atomic checkpoints, safe loading, start-up checks, non-finite losses, the fit summary."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from avssl.cli import main
from avssl.errors import ConfigError
from avssl.methods import SimCLR
from avssl.methods.base import NonFiniteLossError
from avssl.reliability import AtomicCheckpointIO
from tests.conftest import TINY_DATA_ARGS

DEMO = ["--config", "configs/simclr.yaml", "--config", "configs/demo.yaml"]
SMALL = [
    "--model.init_args.width=4",
    "--model.init_args.layers=[1, 1, 1, 1]",
    "--model.init_args.proj_hidden_dim=16",
    "--model.init_args.proj_dim=8",
]


def tiny(root):
    return [*TINY_DATA_ARGS, f"--data.synthetic_root={root}"]


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, target)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError("disk full (injected)")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="injected"):
        io.save_checkpoint({"step": torch.tensor(2)}, target)
    monkeypatch.undo()
    assert int(io.load_checkpoint(target)["step"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary file left


KILL_DURING_SAVE = """
import sys, torch
from avssl.reliability import AtomicCheckpointIO
AtomicCheckpointIO().save_checkpoint({"big": torch.zeros(200_000_000, dtype=torch.uint8), "step": torch.tensor(2)}, sys.argv[1])
"""


def test_sigkill_during_save_leaves_no_partial_file_under_the_final_name(tmp_path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(1)}, target)
    proc = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(target)])
    deadline = time.time() + 120
    while not any(p.name.startswith(".last.ckpt.tmp-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.time() < deadline, "the save never started"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert int(torch.load(target, weights_only=True)["step"]) == 1


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['AVSSL_PAYLOAD_MARK']}",))


def test_pickled_code_in_a_checkpoint_is_refused_and_never_runs(tmp_path, tiny_root, monkeypatch, capsys):
    mark = tmp_path / "payload_ran"
    monkeypatch.setenv("AVSSL_PAYLOAD_MARK", str(mark))
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": {}, "hyper_parameters": {}, "x": Payload()}, f)
    with pytest.raises(SystemExit):
        main(
            [
                "test",
                "--config",
                "configs/linear.yaml",
                "--config",
                "configs/demo_linear.yaml",
                *tiny(tiny_root),
                f"--model.encoder_ckpt={evil}",
            ]
        )
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "fit",
                *DEMO,
                *tiny(tiny_root),
                *SMALL,
                f"--ckpt_path={evil}",
                "--trainer.max_epochs=1",
                f"--trainer.default_root_dir={tmp_path}",
            ]
        )
    assert exit_.value.code == 2 and "refused" in capsys.readouterr().err
    assert not mark.exists()


def test_foreign_instantiator_in_a_checkpoint_is_refused(tmp_path):
    model = SimCLR(width=4, layers=(1, 1, 1, 1), proj_hidden_dim=16, proj_dim=8)
    ckpt = {
        "state_dict": model.state_dict(),
        "hyper_parameters": {**model.hparams, "_instantiator": "os.system"},
        "pytorch-lightning_version": "2.6.6",
    }
    torch.save(ckpt, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="allowlist"):
        SimCLR.load_from_checkpoint(tmp_path / "foreign.ckpt", weights_only=True)


def test_unwritable_checkpoint_directory_fails_at_start_up(tmp_path, tiny_root, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(SystemExit) as exit_:
        main(
            ["fit", *DEMO, *tiny(tiny_root), *SMALL, "--trainer.max_epochs=1", f"--trainer.callbacks.init_args.dirpath={blocker / 'ckpt'}"]
        )
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "cannot write checkpoints" in err and "Traceback" not in err


def test_non_finite_loss_stops_naming_step_and_videos():
    m = SimCLR(width=4, layers=(1, 1, 1, 1), proj_hidden_dim=16, proj_dim=8)
    m.log_dict = lambda *a, **k: None
    batch = {"video": torch.full((2, 2, 3, 4, 16, 16), float("nan")), "spec": torch.randn(2, 2, 1, 16, 32), "label": torch.tensor([0, 1])}
    batch["video_id"] = ["clip_a", "clip_b"]
    with pytest.raises(NonFiniteLossError, match=r"step 0, batch of videos \['clip_a', 'clip_b'\]"):
        m.training_step(batch, 0)


def test_fit_summary_records_counters_and_failures(tmp_path, tiny_root, monkeypatch):
    ckpt = tmp_path / "ckpt"
    args = ["fit", *DEMO, *tiny(tiny_root), *SMALL, "--trainer.max_epochs=1", "--trainer.limit_val_batches=1"]
    main([*args, f"--trainer.callbacks.init_args.dirpath={ckpt}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    summary = json.loads((ckpt / "fit_summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from"] is None
    assert summary["batch_counters"]["failed"] == 0 and "silent_audio" in summary["batch_counters"]
    # NaN injected into every augmented batch after the first (the preview callback draws one too):
    # the fit fails at a training step, the summary says so
    from avssl.augment.pipeline import AVTransform

    real = AVTransform.train_views
    calls = {"n": 0}

    def poisoned(self, batch, generator, keep_wave=False):
        out = real(self, batch, generator, keep_wave)
        calls["n"] += 1
        if calls["n"] >= 2:
            out["video"] = out["video"] * float("nan")
        return out

    monkeypatch.setattr(AVTransform, "train_views", poisoned)
    ckpt2 = tmp_path / "ckpt2"
    with pytest.raises(NonFiniteLossError):
        main([*args, f"--trainer.callbacks.init_args.dirpath={ckpt2}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    summary = json.loads((ckpt2 / "fit_summary.json").read_text())
    assert summary["status"].startswith("failed: NonFiniteLossError") and "non-finite training loss at step" in summary["status"]


def test_checkpoint_io_refuses_pickles_directly(tmp_path, monkeypatch):
    monkeypatch.setenv("AVSSL_PAYLOAD_MARK", str(tmp_path / "payload_ran"))
    path = tmp_path / "p.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"x": Payload()}, f)
    with pytest.raises(ConfigError, match="refused"):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not (tmp_path / "payload_ran").exists()
