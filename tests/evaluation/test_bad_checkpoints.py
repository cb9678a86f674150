"""Numbers that would mislead: a corrupted encoder, a forgotten encoder flag, NaN predictions.
Each ends with one error line naming what is wrong, and no result is written."""

from __future__ import annotations

import pytest
import torch

import avssl
from avssl.cli import main
from avssl.errors import ConfigError
from tests.conftest import TINY_DATA_ARGS


def corrupted(checkpoint, tmp_path, name="nan.ckpt"):
    ckpt = torch.load(checkpoint, weights_only=True)
    key = next(k for k in ckpt["state_dict"] if k.startswith("backbone.audio") and k.endswith("weight"))
    ckpt["state_dict"][key] = ckpt["state_dict"][key].clone().fill_(float("nan"))
    path = tmp_path / name
    torch.save(ckpt, path)
    return path, key


def test_non_finite_weights_are_refused_naming_the_tensor(checkpoint, tmp_path):
    path, key = corrupted(checkpoint, tmp_path)
    with pytest.raises(ConfigError, match=rf"non-finite values \(NaN / inf\) in 1 tensor\(s\): {key}"):
        avssl.load_encoder(path)
    with pytest.raises(ConfigError, match="non-finite"):
        avssl.extract_features(path, [str(path)])  # refused before any video is read


def test_avssl_test_on_a_corrupted_encoder_is_one_error_line_and_writes_no_result(checkpoint, tmp_path, tiny_root, capsys):
    path, key = corrupted(checkpoint, tmp_path)
    out = tmp_path / "linear"
    with pytest.raises(SystemExit) as exit_:
        main(
            ["test", "--config", "linear.yaml", "--config", "demo_linear.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}"]
            + [f"--model.encoder_ckpt={path}", f"--model.init_args.output_dir={out}", f"--trainer.logger.init_args.save_dir={tmp_path}"]
        )
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"avssl: error: model.encoder_ckpt: {path} has non-finite values" in err and key in err and "Traceback" not in err
    assert not (out / "results.json").exists()


def test_an_evaluations_checkpoint_as_the_encoder_is_named_first(tmp_path, tiny_root, capsys):
    """A probe's checkpoint passed as the encoder: the one line says what it is, with no warning
    about missing data settings before it."""
    probe = tmp_path / "probe.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"encoder_ckpt": "pre.ckpt", "mode": "full"}, "encoder_sha256": "ab"}, probe)
    with pytest.raises(SystemExit) as exit_:
        main(["test", "--config", "linear.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}", f"--model.encoder_ckpt={probe}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert f"avssl: error: model.encoder_ckpt: {probe} is an evaluation's checkpoint" in err and "data settings" not in err, err


def test_avssl_test_without_an_encoder_is_an_error_unless_random_init_is_asked_for(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["test", "--config", "linear.yaml", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "avssl: error: model.encoder_ckpt: no pre-trained encoder given" in err and "model.init_args.random_init=true" in err
    probe = avssl.LinearProbe(num_classes=3, random_init=True, backbone=avssl.BackboneConfig(width=4, layers=(1, 1, 1, 1)))
    assert list(probe.encoders) == ["random-init", "random-init-initial-bn"]  # statistics re-estimated, and initial
    with pytest.raises(ConfigError, match="no pre-trained encoder given"):
        avssl.FineTune(num_classes=3)


def test_avssl_transfer_without_ckpt_needs_random_init(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["transfer", "linear", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "avssl: error:" in err


def test_nan_test_predictions_write_no_result(tmp_path):
    from avssl.reliability.finite import NonFiniteLossError

    probe = avssl.LinearProbe(num_classes=3, random_init=True, backbone=avssl.BackboneConfig(width=4, layers=(1, 1, 1, 1)), mode="cached")
    probe.store.add(torch.arange(2), torch.tensor([0, 1]), {"random-init/cached/fused": torch.full((2, 3), float("nan"))})
    probe.on_test_start = lambda: None
    probe._trainer = None
    with pytest.raises(NonFiniteLossError, match="no result written"):
        probe.on_test_epoch_end()


def test_commands_that_find_nothing_to_do_say_so_and_exit_non_zero(tmp_path, capsys):
    empty = tmp_path / "runs"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(empty)])
    assert exit_.value.code == 2 and f"avssl: error: report: no results under {empty}" in capsys.readouterr().err
    assert not (empty / "report").exists()  # no header-only report
    src = tmp_path / "src"
    src.mkdir()
    (src / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(SystemExit) as exit_:
        main(["prepare", str(src), str(tmp_path / "dst"), "--workers", "1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "avssl: error: prepare: none of the 1 videos" in err and "unreadable" in err


def test_results_json_names_the_files_it_left_out(checkpoint, tiny_root, tmp_path):
    import csv
    import json

    rows = list(csv.DictReader(open(tiny_root / "manifest.csv")))
    (tmp_path / "broken.mp4").write_bytes(b"")
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        writer.writerows([str(tiny_root / r["path"]), r["label"], r["split"]] for r in rows)
        writer.writerow(["broken.mp4", rows[0]["label"], "test"])
    out = tmp_path / "out"
    main(
        ["test", "--config", "linear.yaml", "--config", "demo_linear.yaml", f"--data.root={tmp_path}", "--data.num_workers=0"]
        + ["--data.batch_size=4", "--model.init_args.mode=knn", "--model.init_args.train_clips=2", "--data.eval_clips=2"]
        + [f"--model.encoder_ckpt={checkpoint}", f"--model.init_args.output_dir={out}", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    )
    skipped = json.loads((out / "results.json").read_text())["skipped_files"]
    assert skipped == {"test split, 2 evaluation clips per video": {str(tmp_path / "broken.mp4"): "unreadable"}}
