"""Fine-tuning: the encoder of the data's stream trains end to end; the probe's stays frozen."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch

import avssl
from avssl.cli import run_command
from avssl.errors import ConfigError
from tests.data import transfer_trees as trees


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    return trees.ucf101(tmp_path_factory.mktemp("ucf101"))


def ucf_data(encoder, root):
    return avssl.encoder_datamodule(
        encoder, root=str(root), batch_size=4, num_workers=0, eval_clips=2, augment={"crop_size": 32, "eval_crop_size": 32}
    )


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_fine_tuning_trains_the_video_encoder_on_video_only_data_and_leaves_the_audio_encoder(checkpoint, ucf, tmp_path):
    encoder = avssl.load_encoder(checkpoint)
    model = avssl.FineTune(str(checkpoint), num_classes=3, output_dir=str(tmp_path))
    backbone = model.encoders["pretrained"]
    video_before, audio_before = weights(backbone.video), weights(backbone.audio)
    assert video_before.keys() == weights(encoder.backbone.video).keys()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, default_root_dir=tmp_path, enable_progress_bar=False)
    avssl.linear_evaluation(trainer, model, ucf_data(encoder, ucf))
    convs = {k for k in video_before if k.endswith("conv1.weight") or k.endswith("conv2.weight")}
    assert convs and convs <= changed(video_before, weights(backbone.video))  # every conv of the video encoder trained
    assert any("running_mean" in k for k in changed(video_before, weights(backbone.video)))  # BatchNorm in training mode
    assert not changed(audio_before, weights(backbone.audio))  # no audio in the data: that encoder is not trained
    assert set(model.heads) == {"pretrained/video"}
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "finetune" and "fine-tuning" in results["protocol"] and results["dataset"] == "ucf101"
    assert set(results["metrics"]) == {"pretrained/finetune/video"}


def test_fine_tuning_optimiser_is_adam_with_step_decay_over_encoder_and_classifier(checkpoint, ucf, tmp_path):
    model = avssl.FineTune(str(checkpoint), num_classes=3, lr=3e-4, milestones=(1,), gamma=0.5)
    model.attach(ucf_data(avssl.load_encoder(checkpoint), ucf))
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 3e-4
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    backbone = model.encoders["pretrained"]
    assert {id(p) for p in backbone.video.parameters()} <= trained and not {id(p) for p in backbone.audio.parameters()} & trained
    assert {id(p) for p in model.heads.parameters()} <= trained
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.5e-4)


def test_fine_tuning_checkpoints_hold_the_encoder(checkpoint, ucf, tmp_path):
    model = avssl.FineTune(str(checkpoint), num_classes=3)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, default_root_dir=tmp_path, enable_progress_bar=False)
    avssl.linear_evaluation(trainer, model, ucf_data(avssl.load_encoder(checkpoint), ucf))
    path = tmp_path / "ft.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=True)["state_dict"]
    trained = model.encoders["pretrained"].video.stem[0].weight
    assert torch.equal(state["encoders.pretrained.video.stem.0.weight"], trained)


def test_invalid_fine_tuning_options():
    with pytest.raises(ConfigError, match="fine-tuning needs lr > 0"):
        avssl.FineTune(None, num_classes=3, lr=0.0, random_init=True)


def test_transfer_finetune_runs_the_bundled_config(checkpoint, ucf, tmp_path):
    out = tmp_path / "ft"
    run_command(
        "transfer",
        ["finetune", "--root", str(ucf), "--ckpt", str(checkpoint), "--split", "2", "--out", str(out), "--"]
        + ["--config", "finetune.yaml", "--trainer.max_epochs=1", "--data.batch_size=4", "--data.num_workers=0"]
        + ["--data.short_side=40", "--data.augment.crop_size=32", "--data.augment.eval_crop_size=32", "--data.eval_clips=2"],
    )
    report = json.loads((out / "transfer.json").read_text())
    assert report["protocol"] == "finetune" and report["probe_mode"] == "finetune" and report["splits"] == [2]
    assert set(report["summary"]) == {"video"}


def test_the_probes_full_protocol_trains_on_audio_only_views(checkpoint, tmp_path):
    root = trees.esc50(tmp_path / "esc50")
    encoder = avssl.load_encoder(checkpoint)
    data = avssl.encoder_datamodule(encoder, root=str(root), split=2, batch_size=4, num_workers=0, eval_clips=2, augment={"crop_size": 32})
    probe = avssl.LinearProbe(str(checkpoint), num_classes=3, mode="full", output_dir=str(tmp_path))
    audio_before = weights(probe.encoders["pretrained"].audio)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, default_root_dir=tmp_path, enable_progress_bar=False)
    avssl.linear_evaluation(trainer, probe, data)
    assert set(probe.heads) == {"pretrained/audio"}
    assert not changed(audio_before, weights(probe.encoders["pretrained"].audio))  # the probe's encoder stays frozen
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["metrics"]) == {"pretrained/full/audio"} and results["split"] == 2 and results["num_test_videos"] == 3
