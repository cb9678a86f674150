"""Atomic checkpoints, safe loading, start-up checks, non-finite losses, the fit summary."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from avssl.cli import main
from avssl.errors import ConfigError
from avssl.methods import SimCLR
from avssl.models.backbone import BackboneConfig
from avssl.reliability import AtomicCheckpointIO
from avssl.reliability.finite import NonFiniteLossError
from avssl.utils.plain import plain
from tests.conftest import TINY_DATA_ARGS

DEMO = ["--config", "configs/simclr.yaml", "--config", "configs/demo.yaml"]
SMALL = [
    "--model.init_args.backbone.width=4",
    "--model.init_args.backbone.layers=[1, 1, 1, 1]",
    "--model.init_args.proj_hidden_dim=16",
    "--model.init_args.proj_dim=8",
]


def tiny(root):
    return [*TINY_DATA_ARGS, f"--data.synthetic_root={root}"]


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    lightning = {"state_dict": {}, "pytorch-lightning_version": "2.6.6"}  # what it loads must be a training checkpoint
    io.save_checkpoint({**lightning, "step": torch.tensor(1)}, target)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError("disk full (injected)")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="injected"):
        io.save_checkpoint({**lightning, "step": torch.tensor(2)}, target)
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
    model = SimCLR(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=16, proj_dim=8)
    ckpt = {
        "state_dict": model.state_dict(),
        "hyper_parameters": {**plain(dict(model.hparams)), "_instantiator": "os.system"},
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
    m = SimCLR(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=16, proj_dim=8)
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


def fit_args(root, ckpt_dir, log_dir, epochs):
    return [
        "fit",
        "--config=configs/mocov3.yaml",
        "--config=configs/demo.yaml",
        *tiny(root),
        "--model.init_args.backbone.width=4",
        "--model.init_args.backbone.layers=[1, 1, 1, 1]",
        "--model.init_args.proj_hidden_dim=16",
        "--model.init_args.proj_dim=8",
        "--model.init_args.queue_size=16",
        "--model.init_args.warmup_epochs=1",
        f"--trainer.max_epochs={epochs}",
        "--trainer.limit_val_batches=1",
        f"--trainer.callbacks.init_args.dirpath={ckpt_dir}",
        f"--trainer.logger.init_args.save_dir={log_dir}",
    ]


def run_avssl(args, tmp: Path, **kwargs):
    # TMPDIR inside the test's directory: a SIGKILLed run cannot remove its datasets' temporary
    # in-flight directories, which would otherwise pile up in the system's /tmp.
    (tmp / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp / "tmp")}
    return subprocess.Popen(
        [sys.executable, "-m", "avssl", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_killed_run_resumes_to_the_same_state_as_an_uninterrupted_one(tiny_root, tmp_path):
    """SIGKILL after the first end-of-epoch checkpoint, resume with --ckpt_path last: weights,
    optimiser and scheduler state, MoCo queue and momentum target equal the uninterrupted run's."""
    epochs = 4
    straight = run_avssl(fit_args(tiny_root, tmp_path / "a", tmp_path / "logs_a", epochs), tmp_path)
    killed = run_avssl(fit_args(tiny_root, tmp_path / "b", tmp_path / "logs_b", epochs), tmp_path)
    deadline = time.time() + 300
    while not (tmp_path / "b" / "last.ckpt").exists():
        assert killed.poll() is None and time.time() < deadline, killed.stderr.read()[-2000:] if killed.poll() is not None else "timeout"
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    interrupted_at = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)["epoch"]
    resumed = run_avssl([*fit_args(tiny_root, tmp_path / "b", tmp_path / "logs_b", epochs), "--ckpt_path=last"], tmp_path)
    for proc in (straight, resumed):
        assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    a = torch.load(tmp_path / "a" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == epochs - 1 and a["global_step"] == b["global_step"] and interrupted_at < epochs - 1
    for key, value in a["state_dict"].items():  # includes target.*, queue, queue_ptr, queue_len
        assert torch.equal(value, b["state_dict"][key]), key
    assert any(k.startswith("target.") for k in a["state_dict"]) and int(a["state_dict"]["queue_len"]) > 0
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert a["lr_schedulers"] == b["lr_schedulers"]
    summary = json.loads((tmp_path / "b" / "fit_summary.json").read_text())
    assert summary["resumed_from"] and summary["resumed_from"].endswith("last.ckpt")


def test_augmentation_randomness_depends_on_seed_batch_number_and_rank_only(tiny_root):
    """The views a pre-training method draws for a batch (its own on_after_batch_transfer)."""
    import dataclasses
    from types import SimpleNamespace

    from avssl.augment.pipeline import AugmentConfig
    from avssl.data.datamodule import AVDataModule
    from avssl.methods import SimCLR
    from avssl.models.backbone import BackboneConfig
    from tests.conftest import TINY

    dm = AVDataModule(
        synthetic=TINY,
        synthetic_root=str(tiny_root),
        batch_size=2,
        num_workers=0,
        short_side=40,
        sample_rate=16000,
        augment=AugmentConfig(crop_size=32),
    )
    batch = next(iter(dm.train_dataloader()))
    model = SimCLR(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=16, proj_dim=8)

    def views(batch_number, rank, seed=0, step=3):
        progress = SimpleNamespace(total=SimpleNamespace(ready=batch_number))
        loop = SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress))
        data = SimpleNamespace(views=dataclasses.replace(dm.views, seed=seed))
        model.trainer = SimpleNamespace(training=True, global_step=step, global_rank=rank, fit_loop=loop, datamodule=data)
        model.setup("fit")
        return model.on_after_batch_transfer(dict(batch), 0)["video"]

    assert torch.equal(views(5, 0), views(5, 0, step=7))  # a resumed run at batch 5 redraws the same views
    assert not torch.equal(views(5, 0), views(5, 1))  # ranks differ
    assert not torch.equal(views(5, 0), views(6, 0))  # micro-batches of one accumulated step (same global step) differ
    assert not torch.equal(views(5, 0), views(5, 0, seed=1))


@pytest.mark.parametrize(
    "option, words",
    [
        ("--data.clip_seconds=30", ["data.clip_seconds", "longer than every video"]),
        ("--data.num_frames=0", ["data.num_frames", ">= 1"]),
        ("--data.gap_power=0", ["data.gap_power", "> 0"]),
        ("--data.video_backend=ffmpeg", ["data.video_backend", "pyav, decord", "ffmpeg"]),
        ("--model.class_path=avssl.methods.NoSuchMethod", ["NoSuchMethod"]),
        ("--model.init_args.base_momentum=2", ["base_momentum"]),
    ],
)
def test_configuration_is_validated_before_training(option, words, tiny_root, capsys, tmp_path):
    out = [
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.callbacks.init_args.dirpath={tmp_path / 'ckpt'}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", "configs/mocov3.yaml", *tiny(tiny_root), *SMALL, option, "--trainer.fast_dev_run=1", *out])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "Traceback" not in err


def test_fit_summary_names_the_skipped_files_by_split_in_words(tmp_path, tiny_root, caplog):
    import csv
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    (root / "synthetic.json").unlink()  # read as a plain manifest
    (root / "broken.mp4").write_bytes(b"")
    rows = list(csv.DictReader(open(root / "manifest.csv")))
    with open(root / "manifest.csv", "a", newline="") as f:
        csv.writer(f).writerow(["broken.mp4", rows[0]["label"], "train"])
    ckpt = tmp_path / "ckpt"
    args = ["fit", *DEMO, *TINY_DATA_ARGS, f"--data.root={root}", *SMALL, "--trainer.max_epochs=1", "--trainer.limit_val_batches=1"]
    main([*args, f"--trainer.callbacks.init_args.dirpath={ckpt}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    skipped = json.loads((ckpt / "fit_summary.json").read_text())["skipped_when_indexing"]
    key = "train split, 2 training clips per video"
    assert skipped[key]["by_reason"] == {"unreadable": 1} and skipped[key]["files"] == {str(root / "broken.mp4"): "unreadable"}
    assert any(str(root / "broken.mp4") in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)


class InterruptAt(pl.Callback):
    """Raises what Ctrl-C raises (KeyboardInterrupt) after training step ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def resumable_fit(root, runs: Path, *extra) -> list[str]:
    """MoCo v3 with the bundled base's logger and checkpoints (runs/mocov3/version_N/checkpoints)."""
    small = ["--model.init_args.backbone.width=4", "--model.init_args.backbone.layers=[1, 1, 1, 1]", "--model.init_args.queue_size=16"]
    heads = ["--model.init_args.proj_hidden_dim=16", "--model.init_args.proj_dim=8", "--trainer.log_every_n_steps=1"]
    data = [*tiny(root), "--data.short_side=40", "--data.augment.crop_size=32", "--data.sample_rate=16000", "--trainer.max_epochs=2"]
    return ["fit", "--config=configs/mocov3.yaml", *data, *small, *heads, f"--trainer.logger.init_args.save_dir={runs}", *extra]


def test_an_interrupt_saves_where_the_same_command_with_ckpt_path_last_continues(tiny_root, tmp_path, capsys):
    """Ctrl-C mid-epoch: exit status 130, the run summarised as interrupted and saved at that step
    in its own version folder; the same command plus --ckpt_path last continues that run (same
    folder, from that step) to the step an uninterrupted run ends at. --ckpt_path last with nothing
    to resume is an error, not a fresh start."""
    runs = tmp_path / "runs"
    interrupting = tmp_path / "interrupt.yaml"
    interrupting.write_text(
        "trainer:\n  callbacks:\n"
        "    - {class_path: pytorch_lightning.callbacks.ModelCheckpoint, init_args: {save_last: true, every_n_epochs: 1}}\n"
        "    - {class_path: tests.test_reliability.InterruptAt, init_args: {step: 3}}\n"
    )
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as exit_:
            main([*resumable_fit(tiny_root, runs), f"--config={interrupting}"])
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C while it shuts down
    assert exit_.value.code == 130
    run = runs / "mocov3" / "version_0"
    summary = json.loads((run / "checkpoints" / "fit_summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["global_step"] == 3
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    main([*resumable_fit(tiny_root, runs), "--ckpt_path=last"])
    assert [d.name for d in (runs / "mocov3").iterdir()] == ["version_0"]  # the same run, no version_1
    summary = json.loads((run / "checkpoints" / "fit_summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from"].endswith(str(run / "checkpoints" / "last.ckpt"))
    main(resumable_fit(tiny_root, tmp_path / "straight"))  # uninterrupted
    straight = torch.load(tmp_path / "straight" / "mocov3" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == straight["global_step"] > 3
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main([*resumable_fit(tiny_root, tmp_path / "nothing"), "--ckpt_path=last"])
    assert exit_.value.code == 2 and "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_ctrl_c_with_a_loader_worker_then_the_guides_resume_command(tiny_root, tmp_path):
    """Ctrl-C as a terminal sends it (SIGINT to the whole process group: the loader worker too)
    after the first epoch: status 130, the run saved at the interrupted step; the guide's command,
    the same plus --ckpt_path last, continues it in the same folder to the end."""
    runs = tmp_path / "runs"
    args = [*resumable_fit(tiny_root, runs, "--trainer.max_epochs=6"), "--data.num_workers=1"]
    proc = run_avssl(args, tmp_path, start_new_session=True)
    checkpoints = runs / "mocov3" / "version_0" / "checkpoints"
    deadline = time.time() + 300
    while not (checkpoints / "last.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-2000:] if proc.poll() is not None else "timeout"
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130, proc.stderr.read()[-3000:]
    summary = json.loads((checkpoints / "fit_summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == summary["global_step"] > 0
    resumed = run_avssl([*args, "--ckpt_path", "last"], tmp_path)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-3000:]
    summary = json.loads((checkpoints / "fit_summary.json").read_text())
    assert summary["status"] == "finished" and summary["epoch"] == 6 and [d.name for d in (runs / "mocov3").iterdir()] == ["version_0"]
