"""The CLI end to end through main([...]): every shipped YAML is exercised here."""

import json
import subprocess
import sys

import pytest
import torch

from avssl.cli import instantiate, main
from avssl.spec import InputSpec
from tests.conftest import TINY_DATA_ARGS

DEMO = ["--config", "configs/simclr.yaml", "--config", "configs/demo.yaml"]
DEMO_LINEAR = ["--config", "configs/linear.yaml", "--config", "configs/demo_linear.yaml"]


def tiny(root):
    return [*TINY_DATA_ARGS, f"--data.synthetic_root={root}"]


def test_help_lists_the_commands(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "predict", "synth"):
        assert command in out


def test_print_config_of_every_method_config(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *DEMO, "--print_config"])
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert "avssl.methods.SimCLR" in out and "crop_size: 32" in out


def test_fit_fast_dev_run_on_the_demo_config(tiny_root, tmp_path):
    main(["fit", *DEMO, *tiny(tiny_root), "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}"])


def test_fit_builds_a_missing_synthetic_dataset(tmp_path, caplog):
    root = tmp_path / "new_synthetic"
    main(["fit", *DEMO, *tiny(root), "--trainer.fast_dev_run=1"])
    assert (root / "manifest.csv").exists()


def test_pretrain_then_linear_test_writes_results(tiny_root, tmp_path, capsys, monkeypatch):
    ckpt_dir = tmp_path / "ckpt"
    main(
        [
            "fit",
            *DEMO,
            *tiny(tiny_root),
            "--trainer.max_epochs=1",
            "--trainer.limit_val_batches=1",
            f"--trainer.callbacks.init_args.dirpath={ckpt_dir}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    ckpt = ckpt_dir / "last.ckpt"
    assert ckpt.exists()
    saved = torch.load(ckpt, weights_only=True)  # the encoder's input, beside its architecture
    assert saved["input_spec"] == InputSpec.from_data_settings(saved["datamodule_hyper_parameters"]).to_dict()
    assert saved["input_spec"]["num_frames"] == saved["datamodule_hyper_parameters"]["num_frames"]
    reads, load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: reads.append(str(f)) or load(f, *a, **k))
    out_dir = tmp_path / "linear"
    main(
        [
            "test",
            *DEMO_LINEAR,
            *tiny(tiny_root),
            f"--model.encoder_ckpt={ckpt}",
            "--trainer.max_epochs=2",
            "--data.eval_clips=2",
            f"--model.output_dir={out_dir}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    assert reads.count(str(ckpt.resolve())) == 1  # one read of the encoder for settings and weights
    out = capsys.readouterr().out
    assert "| pretrained | cached |" in out and "fast mode, not the paper's protocol" in out  # the demo's fast mode, labelled
    results = json.loads((out_dir / "results.json").read_text())
    metrics = results["metrics"]
    for key in ("pretrained/cached", "random-init/cached", "chance"):
        for readout in ("fused", "audio", "video"):
            assert 0 <= metrics[f"{key}/{readout}"]["top1"] <= 100
    assert metrics["chance/fused"]["top1"] == pytest.approx(25.0)
    assert len(results["encoder_sha256"]) == 64 and results["architecture"]["width"] == 16


def test_missing_data_root_is_one_error_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *DEMO, f"--data.root={tmp_path / 'nope'}", "--trainer.fast_dev_run=1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "nope" in err and "does not exist" in err and "Traceback" not in err


def one_error_line(capsys, args) -> str:
    """Run ``args``; the run must exit with status 2 and exactly one ``avssl: error:`` line."""
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("avssl: error: ") and "Traceback" not in err and "usage:" not in err, err
    return lines[-1]


@pytest.mark.parametrize(
    "option,words",
    [
        ("--data.sample_rate=0", ["data.sample_rate", ">= 1", "got 0"]),
        ("--data.sample_rate=100", ["data.sample_rate", "n_fft"]),
        ("--data.clip_seconds=0", ["data.clip_seconds", "> 0"]),
        ("--data.num_workers=-1", ["data.num_workers", ">= 0"]),
    ],
)
def test_bad_data_values_are_one_error_line(option, words, capsys, tiny_root):
    line = one_error_line(capsys, ["fit", *DEMO, *tiny(tiny_root), option, "--trainer.fast_dev_run=1"])
    assert all(w in line for w in words), line


@pytest.mark.parametrize(
    "content,words",
    [
        (b"model: [unclosed\n  x: : :\n", ["not valid YAML", "line 2"]),
        (b"\x00\x01\x02binary", ["not valid YAML"]),
        (b"- a\n- list\n", ["expected a YAML mapping", "list"]),
        (None, ["no such file"]),
    ],
)
def test_a_bad_config_file_is_named_in_one_error_line(content, words, capsys, tmp_path):
    config = tmp_path / "settings.yaml"
    if content is not None:
        config.write_bytes(content)
    line = one_error_line(capsys, ["fit", *DEMO, "--config", str(config)])
    assert str(config) in line and all(w in line for w in words), line


def test_a_dataset_smaller_than_one_batch_is_an_error_not_zero_steps(capsys, tiny_root):
    line = one_error_line(capsys, ["fit", *DEMO, *tiny(tiny_root), "--data.batch_size=9", "--trainer.max_steps=1"])
    assert "data.batch_size" in line and "8 decodable videos" in line and "zero steps" in line


def test_unknown_option_and_bad_value_are_reported(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *DEMO, "--data.no_such_option=1"])
    assert exit_.value.code == 2
    assert "no_such_option" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *DEMO, "--data.batch_size=many"])
    assert exit_.value.code == 2
    assert "batch_size" in capsys.readouterr().err


def test_bad_checkpoints_give_clear_errors(tmp_path, tiny_root, capsys):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exit_:
        main(["test", *DEMO_LINEAR, *tiny(tiny_root), f"--model.encoder_ckpt={junk}"])
    assert exit_.value.code == 2
    assert f"model.encoder_ckpt: {junk} is not a checkpoint (a text file)" in capsys.readouterr().err
    wrong = tmp_path / "wrong.ckpt"
    torch.save(
        {"state_dict": {"backbone.video.stem.0.weight": torch.zeros(1)}, "hyper_parameters": {"width": 16, "layers": [1, 1, 1, 1]}}, wrong
    )
    with pytest.raises(SystemExit) as exit_:
        main(["test", *DEMO_LINEAR, *tiny(tiny_root), f"--model.encoder_ckpt={wrong}"])
    assert exit_.value.code == 2
    assert "does not match the backbone" in capsys.readouterr().err


def test_synth_command(tmp_path, capsys):
    main(["synth", "--out", str(tmp_path / "s"), "--num-classes", "2", "--videos-per-class", "1", "--duration", "1.0", "--size", "32"])
    assert (tmp_path / "s" / "manifest.csv").exists()
    assert json.loads((tmp_path / "s" / "synthetic.json").read_text())["num_classes"] == 2
    assert "synthetic dataset" in capsys.readouterr().out


def test_paper_simclr_config_runs_one_step(tiny_root, tmp_path):
    """configs/simclr.yaml as shipped (ResNet-18, 112-px crops, 44.1 kHz) on the tiny data."""
    main(
        [
            "fit",
            "--config",
            "configs/simclr.yaml",
            *tiny(tiny_root),
            "--data.batch_size=2",
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )


@pytest.mark.slow
def test_demo_pretraining_beats_random_init(tmp_path, capsys):
    """The README's demo claim: fused linear-probe top-1 >= 80 % and >= 10 points over random init,
    and each stream's own readout >= 20 points over the random-init encoder's (both streams learn).
    Random init is the stronger baseline, its batch-norm statistics re-estimated on the training
    clips: there it reads 83 % fused, so the earlier 30-point target against the initial statistics
    (61 %) cannot be met below 100 % (docs/studies/demo.md, three seeds)."""
    ckpt_dir = tmp_path / "ckpt"
    main(["fit", *DEMO, f"--trainer.callbacks.init_args.dirpath={ckpt_dir}", f"--trainer.logger.init_args.save_dir={tmp_path}"])
    out_dir = tmp_path / "linear"
    main(["test", *DEMO_LINEAR, f"--model.encoder_ckpt={ckpt_dir / 'last.ckpt'}", f"--model.output_dir={out_dir}"])
    metrics = json.loads((out_dir / "results.json").read_text())["metrics"]
    top1 = {key: value["top1"] for key, value in metrics.items()}
    gain = {r: top1[f"pretrained/cached/{r}"] - top1[f"random-init/cached/{r}"] for r in ("fused", "audio", "video")}
    assert top1["pretrained/cached/fused"] >= 80 and gain["fused"] >= 10, top1
    assert gain["audio"] >= 20 and gain["video"] >= 20, top1


def test_a_second_demo_run_replaces_the_checkpoint_the_evaluation_reads(tiny_root, tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    args = ["fit", *DEMO, *tiny(tiny_root), "--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=0"]
    args += [f"--trainer.callbacks.init_args.dirpath={ckpt_dir}", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    main([*args, "--model.init_args.base_lr=1.0"])
    main([*args, "--model.init_args.base_lr=2.0"])
    assert sorted(p.name for p in ckpt_dir.glob("last*.ckpt")) == ["last.ckpt"]
    assert torch.load(ckpt_dir / "last.ckpt", weights_only=True)["hyper_parameters"]["base_lr"] == 2.0


def test_a_run_prints_no_third_party_noise(tiny_root, tmp_path):
    """What a user's terminal shows (a fresh interpreter: pytest would capture the warnings)."""
    args = ["fit", *DEMO, *tiny(tiny_root), "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}"]
    run = subprocess.run([sys.executable, "-m", "avssl", *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for noise in ("litlogger", "LeafSpec", "You have overridden `on_after_batch_transfer`"):
        assert noise not in run.stdout + run.stderr, noise


def test_validate_and_predict_run(tiny_root, tmp_path):
    for command in ("validate", "predict"):
        main([command, *DEMO, *tiny(tiny_root), "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}"])


@pytest.mark.parametrize(
    "option, words",
    [
        ('--data.augment.temporal=[{"name": "XX"}]', ["name", "XX"]),
        ('--data.augment.temporal=[{"name": "RE", "alpha": 1.5}]', ["data.augment.temporal", "alpha", "1.5"]),
        ('--data.augment.temporal=[{"name": "TM", "p": -1}]', ["p must be in [0, 1]"]),
        ("--data.augment.audio.pitch_placement=middle", ["pitch_placement"]),
    ],
)
def test_bad_augmentation_config_fails_before_training(option, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *DEMO, option, "--trainer.fast_dev_run=1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "Traceback" not in err


SMALL_MODEL = ["--model.init_args.backbone.width=8", "--model.init_args.backbone.layers=[1, 1, 1, 1]"]
SMALL_HEADS = {
    "simclr": ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=16"],
    "mocov3": ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=16", "--model.init_args.queue_size=16"],
    "byol": ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=16"],
    "simsiam": ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=32", "--model.init_args.pred_hidden_dim=8"],
    "supervised": [],
    "vicreg": ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=16"],
    "barlow_twins": ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=16"],
    "cross_modal": ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=16"],
    "cavmae": ["--model.init_args.decoder_dim=16", "--model.init_args.decoder_depth=1", "--model.init_args.decoder_heads=2"],
}
# a ViT of test size (configs/vit.yaml and cavmae.yaml set ViT-B); width / layers above are the ResNets'
SMALL_VIT = [f"--model.init_args.backbone.{k}={v}" for k, v in (("dim", 16), ("depth", 1), ("heads", 2), ("patch_size", 8))]
SMALL_DATA = ["--data.short_side=40", "--data.augment.crop_size=32", "--data.sample_rate=16000", "--trainer.accelerator=cpu"]


@pytest.mark.parametrize("method", sorted(SMALL_HEADS))
def test_every_method_config_runs_a_step(method, tiny_root, tmp_path):
    """configs/<method>.yaml as shipped, with a small width and small clips on the tiny data."""
    args = ["fit", "--config", f"configs/{method}.yaml", *tiny(tiny_root), *SMALL_MODEL, *SMALL_HEADS[method], *SMALL_DATA]
    main([*args, *SMALL_VIT, "--trainer.fast_dev_run=1", f"--trainer.default_root_dir={tmp_path}"])


def test_demo_yaml_after_vit_yaml_gives_the_cpu_sized_vit():
    model, _, _ = instantiate(["--config", "configs/simclr.yaml", "--config", "configs/vit.yaml", "--config", "configs/demo.yaml"])
    arch = model.backbone.config
    assert (arch.encoder, arch.dim, arch.depth, arch.heads, arch.patch_size, arch.tubelet) == ("vit", 64, 2, 4, 8, 2)
    assert sum(p.numel() for p in model.backbone.parameters()) < 300_000


@pytest.mark.parametrize("method", sorted(set(SMALL_HEADS) - {"cavmae"}))
def test_every_method_trains_vit_encoders_with_vit_yaml(method, tiny_root, tmp_path):
    """configs/vit.yaml composed after any method's config switches both encoders to ViTs (two-frame
    tubelets); the bf16 step covers the attention under autocast."""
    args = ["fit", "--config", f"configs/{method}.yaml", "--config", "configs/vit.yaml", *tiny(tiny_root), *SMALL_HEADS[method]]
    args += [
        *SMALL_DATA,
        *SMALL_VIT,
        "--trainer.precision=bf16-mixed",
        "--trainer.fast_dev_run=1",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    main(args)


def out_dirs(tmp_path):
    """Keep a run's checkpoints and logs out of the repository."""
    return [
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.callbacks.init_args.dirpath={tmp_path / 'ckpt'}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
    ]


def test_mixed_precision_and_cross_modal_term(tiny_root, tmp_path):
    """bf16 autocast (the CPU flavour of --trainer.precision 16-mixed) with every loss path: MoCo v3
    queue, momentum update and the cross-modal term."""
    args = ["fit", "--config", "configs/mocov3.yaml", *tiny(tiny_root), *SMALL_MODEL, *SMALL_HEADS["mocov3"], *SMALL_DATA]
    main(
        [
            *args,
            "--trainer.precision=bf16-mixed",
            "--model.init_args.cross_modal_weight=0.5",
            "--trainer.fast_dev_run=2",
            *out_dirs(tmp_path),
        ]
    )


def test_sync_batchnorm_on_cpu_is_refused_before_training(tiny_root, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *DEMO, *tiny(tiny_root), "--trainer.sync_batchnorm=true", "--trainer.fast_dev_run=1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "trainer.sync_batchnorm" in err and "Traceback" not in err


def test_supervised_needs_labels(tmp_path, tiny_root, capsys):
    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    for i, mp4 in enumerate(sorted(tiny_root.glob("**/*.mp4"))[:4]):
        (unlabeled / f"v{i}.mp4").symlink_to(mp4)
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "fit",
                "--config",
                "configs/supervised.yaml",
                f"--data.root={unlabeled}",
                *SMALL_MODEL,
                "--trainer.fast_dev_run=1",
                *out_dirs(tmp_path),
            ]
        )
    assert exit_.value.code == 2
    assert "num_classes" in capsys.readouterr().err


def test_ddp_trainer_config_composes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", "configs/byol.yaml", "--config", "configs/trainer/ddp.yaml", "--print_config"])
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert "strategy: ddp" in out and "sync_batchnorm: true" in out and "avssl.methods.BYOL" in out


def test_instantiate_builds_without_running(tiny_root):
    from avssl.cli import instantiate
    from avssl.errors import ConfigError

    model, data, trainer = instantiate(["--config", "configs/mocov3.yaml", *tiny(tiny_root), *SMALL_MODEL, *SMALL_HEADS["mocov3"]])
    assert type(model).__name__ == "MoCoV3" and model.hparams.num_classes == 4 and data.batch_size == 4
    with pytest.raises(ConfigError, match="model.queue_size"):
        instantiate(["--config", "configs/mocov3.yaml", *SMALL_MODEL, "--model.init_args.queue_size=-1"])
