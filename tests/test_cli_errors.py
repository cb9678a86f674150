"""A probe of user mistakes at every entry point: each ends with one ``avssl: error:`` line naming
the option or file and what was expected (no usage dump, no traceback), exits non-zero, and
changes no source file and no earlier result."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from avssl.cli import main
from tests.conftest import TINY_DATA_ARGS

DEMO = ["--config", "configs/simclr.yaml", "--config", "configs/demo.yaml"]
SMALL = ["--model.init_args.backbone.width=4", "--model.init_args.backbone.layers=[1, 1, 1, 1]"]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def workspace(tmp_path, tiny_root):
    """A run directory holding an earlier result, and the tiny dataset's files, both watched."""
    earlier = tmp_path / "runs" / "simclr" / "version_0"
    earlier.mkdir(parents=True)
    (earlier / "results.json").write_text('{"top1": 61.2}')
    before = snapshot(tmp_path), snapshot(tiny_root)
    yield tmp_path
    assert (snapshot(tmp_path), snapshot(tiny_root)) == before, "a failed command changed a file"


def one_error(capsys, args, code=2) -> str:
    """Run ``avssl ARGS``; its single error line (asserting the exit status and the one line)."""
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("avssl: error:")]
    assert exit_.value.code == code, err
    assert len(errors) == 1 and "usage:" not in err and "Traceback" not in err, err
    return errors[0]


def fit(tiny_root, tmp_path, *extra):
    out = [f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}", f"--trainer.callbacks.init_args.dirpath={tmp_path / 'ckpt'}"]
    return ["fit", *DEMO, *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}", *SMALL, *out, "--trainer.max_epochs=1", *extra]


@pytest.mark.parametrize(
    "flag, words",
    [
        ("--data.batchsize=3", ["unknown option data.batchsize", "did you mean data.batch_size?"]),
        ("--trainer.max_epocs=1", ["unknown option trainer.max_epocs", "did you mean trainer.max_epochs?"]),
        ("--model.backbone.widht=4", ["unknown option model.init_args.backbone.widht", "SimCLR", "model.init_args.backbone.width?"]),
        ("--model.init_args.temperatur=3", ["model.init_args.temperatur", "did you mean model.init_args.temperature?"]),
        ("--trainer.max_epoch=1", ["unknown option trainer.max_epoch", "did you mean trainer.max_epochs?"]),  # no prefix matching
        ("--data.batch_size=x", ["data.batch_size: expected int, got 'x'"]),
        ("--data.augment.temporal.x=1", ["unknown option data.augment.temporal.x", "TemporalAug", "data.augment.temporal.p?"]),
    ],
)
def test_a_mistyped_option_is_named_in_one_line(flag, words, workspace, tiny_root, capsys):
    line = one_error(capsys, fit(tiny_root, workspace, flag))
    assert all(w in line for w in words), line


@pytest.mark.parametrize(
    "yaml_text, words",
    [
        ("data:\n  batchsize: 3\n", ["unknown option data.batchsize", "data.batch_size?"]),
        ("trainer:\n  max_epocs: 3\n", ["unknown option trainer.max_epocs", "trainer.max_epochs?"]),
        ("model:\n  init_args:\n    backbone:\n      widht: 4\n", ["model.init_args.backbone.widht", "model.init_args.backbone.width?"]),
        ("trainr:\n  max_epochs: 3\n", ["unknown option trainr.max_epochs", "trainer.max_epochs?"]),
        ("data:\n  batch_size: x\n", ["data.batch_size: expected int, got 'x'"]),
        ("model:\n  init_args:\n    temperature: hot\n", ["model.init_args.temperature: expected float, got 'hot'"]),
        ("model:\n  class_path: avssl.methods.SimCLRR\n", ["model:", "SimCLRR"]),
    ],
)
def test_a_mistyped_key_in_a_config_file_names_the_file(yaml_text, words, workspace, tiny_root, capsys):
    config = workspace / "mine.yaml"
    config.write_text(yaml_text)
    line = one_error(capsys, fit(tiny_root, workspace, "--config", str(config)))
    assert line.startswith(f"avssl: error: {config}: ") and all(w in line for w in words), line
    config.unlink()  # the watched workspace held no such file before


def test_resuming_from_a_file_that_is_not_a_training_checkpoint(workspace, tiny_root, capsys):
    from avssl.methods import SimCLR
    from avssl.models.backbone import BackboneConfig

    model = SimCLR(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)))
    plain = workspace / "weights.pt"
    torch.save(model.state_dict(), plain)
    full = workspace / "full.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": 0}, full)
    truncated = workspace / "truncated.ckpt"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    cases = {
        plain: ["ckpt_path", "not a Lightning training checkpoint", "state_dict", "pytorch-lightning_version"],
        truncated: ["ckpt_path", "not a readable checkpoint", "truncated"],
        workspace / "nowhere.ckpt": ["ckpt_path", "does not exist"],
    }
    before = snapshot(workspace)
    for path, words in cases.items():
        line = one_error(capsys, fit(tiny_root, workspace, f"--ckpt_path={path}"))
        assert str(path) in line and all(w in line for w in words), line
    assert snapshot(workspace) == before  # no empty runs/<name>/version_N, no checkpoint
    for path in (plain, full, truncated):
        path.unlink()


def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is_by_both_commands(workspace, tiny_root, capsys):
    """``fit --ckpt_path`` and ``test --model.encoder_ckpt`` read a checkpoint through one check:
    text, media, YAML, a directory and an empty file each end in one line naming the option, the
    path and what the file is, never in a traceback or a hint that the file is a checkpoint."""
    media = next(tiny_root.rglob("*.mp4"))
    files = {
        "notes.txt": (b"resume from epoch 3\n", "a text file"),
        "take.wav": (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64), "a WAV"),
        "clip.mp4": (media.read_bytes(), "an MP4 / MOV media file"),
        "run.yaml": (b"trainer:\n  max_epochs: 3\n", "a text file (YAML?)"),
        "empty.ckpt": (b"", "an empty file"),
    }
    cases = {}
    for name, (content, what) in files.items():
        (workspace / name).write_bytes(content)
        cases[workspace / name] = what
    (workspace / "ckpt_dir").mkdir()
    cases[workspace / "ckpt_dir"] = "is a directory"
    before = snapshot(workspace)
    for path, what in cases.items():
        for option, args in (
            ("ckpt_path", fit(tiny_root, workspace, f"--ckpt_path={path}")),
            ("model.encoder_ckpt", ["test", "--config", "configs/linear.yaml", f"--model.encoder_ckpt={path}", *TINY_DATA_ARGS]),
        ):
            line = one_error(capsys, args)
            assert option in line and str(path) in line and what in line and "weights_only" not in line, line
    assert snapshot(workspace) == before
    for path in cases:
        path.unlink() if path.is_file() else path.rmdir()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error is about a machine without a GPU")
def test_the_gpu_config_on_a_machine_without_one_is_one_line(workspace, tiny_root, capsys):
    line = one_error(capsys, fit(tiny_root, workspace, "--config=trainer/ddp.yaml", "--trainer.fast_dev_run=1"))
    assert "trainer: No supported gpu backend found" in line and "--trainer.accelerator=cpu" in line, line


def test_commands_that_find_nothing_to_do_fail(workspace, capsys):
    empty = workspace / "empty"
    empty.mkdir()
    assert "no results under" in one_error(capsys, ["report", str(empty), "--out", str(workspace / "report")])
    (empty / "broken.mp4").write_bytes(b"\x00" * 64)
    line = one_error(capsys, ["prepare", str(empty), str(workspace / "prepared"), "--workers", "1"])
    assert "none of the 1 videos" in line and "unreadable" in line
    import shutil

    shutil.rmtree(workspace / "prepared")
    shutil.rmtree(empty)


def test_probe_without_an_encoder_asks_for_one(workspace, tiny_root, capsys):
    line = one_error(capsys, ["test", "--config", "configs/linear.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}"])
    assert "model.encoder_ckpt" in line and "random_init" in line, line


def test_help_of_every_command_works(capsys):
    main(["--help"])
    assert "transfer" in capsys.readouterr().out
    for command in ("transfer", "prepare", "synth", "report", "grid", "configs"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0 and f"avssl {command}" in capsys.readouterr().out, command


def test_a_fit_that_fails_before_its_first_step_leaves_no_run_directory(workspace, tiny_root, capsys):
    line = one_error(capsys, fit(tiny_root, workspace, "--data.batch_size=512"))
    assert "data.batch_size" in line and "fewer than one batch" in line
    assert not (workspace / "runs" / "demo").exists()


def test_probing_an_encoder_of_unlabelled_videos_asks_for_a_labelled_data_root(workspace, tiny_root, capsys):
    import shutil

    import avssl
    from tests.evaluation.test_linear import fake_checkpoint

    folder = workspace / "videos"  # the encoder was pre-trained on a folder without labels
    folder.mkdir()
    for i, video in enumerate(sorted(tiny_root.glob("**/*.mp4"))[:3]):
        shutil.copy(video, folder / f"clip{i}.mp4")
    data = avssl.AVDataModule(
        str(folder), batch_size=2, num_workers=0, short_side=32, sample_rate=16000, augment=avssl.AugmentConfig(crop_size=32)
    )
    fake_checkpoint(workspace / "enc.ckpt", data)
    line = one_error(capsys, ["test", "--config", "configs/linear.yaml", f"--model.encoder_ckpt={workspace / 'enc.ckpt'}"])
    assert line.startswith("avssl: error: data.root: linear evaluation needs labelled data") and "has 0" in line, line
    shutil.rmtree(folder)
    (workspace / "enc.ckpt").unlink()
