"""Initialising the ViT encoders from a local image MAE / ViT or CAV-MAE checkpoint file."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import save_file

from avssl.cli import main
from avssl.errors import ConfigError
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.models.init import load_vit_weights
from avssl.models.vit import ViTStream
from tests.conftest import TINY_DATA_ARGS

CAVMAE_LAYOUT = BackboneConfig(encoder="vit", dim=16, depth=1, heads=2, patch_size=4, tubelet=2, shared_depth=1, fusion="joint")


def image_mae_state() -> dict[str, torch.Tensor]:
    """An image MAE's encoder + decoder keys (2 blocks), as facebookresearch/mae saves them."""
    torch.manual_seed(3)
    vit = ViTStream("video", dim=16, depth=2, heads=2, patch_size=4)
    state = {k: v.clone() for k, v in vit.state_dict().items() if k != "modality"}
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"][:, :, 0]  # a 2-D patch embedding
    state |= {"pos_embed": torch.zeros(1, 5, 16), "cls_token": torch.zeros(1, 1, 16), "decoder_embed.weight": torch.zeros(8, 16)}
    return state


def test_an_image_mae_initialises_both_streams_and_the_shared_block(tmp_path):
    state = image_mae_state()
    torch.save({"model": state}, tmp_path / "mae.pth")
    backbone = TwoStreamBackbone(CAVMAE_LAYOUT)
    report = load_vit_weights(backbone, tmp_path / "mae.pth")
    own = backbone.state_dict()
    for stream in ("video", "audio"):
        torch.testing.assert_close(own[f"{stream}.blocks.0.attn.qkv.weight"], state["blocks.0.attn.qkv.weight"])
        torch.testing.assert_close(own[f"{stream}.norm.weight"], state["norm.weight"])
    for norm in ("norm1", "norm1_a", "norm1_v"):  # block 1 -> the shared block, its norms copied to each pair
        torch.testing.assert_close(own[f"shared.0.{norm}.weight"], state["blocks.1.norm1.weight"])
    torch.testing.assert_close(own["shared.0.mlp.fc2.weight"], state["blocks.1.mlp.fc2.weight"])
    rgb = state["patch_embed.proj.weight"]
    torch.testing.assert_close(own["audio.patch_embed.proj.weight"], rgb.sum(dim=1, keepdim=True))  # AST's channel sum
    torch.testing.assert_close(own["video.patch_embed.proj.weight"].sum(dim=2), rgb)  # a tubelet sums to the frame's
    assert report.layout == "image MAE / ViT"
    assert report.kept == ["audio.modality", "video.modality"]
    assert report.unused == ["cls_token", "decoder_embed.weight", "pos_embed"]
    assert "loaded" in report.summary() and "pos_embed" in report.summary()


def test_a_cav_mae_checkpoint_maps_one_to_one(tmp_path):
    source = TwoStreamBackbone(CAVMAE_LAYOUT)
    names = {"audio.patch_embed.": "patch_embed_a.", "video.patch_embed.": "patch_embed_v.", "audio.blocks.": "blocks_a."}
    names |= {"video.blocks.": "blocks_v.", "shared.": "blocks_u.", "audio.norm.": "norm_a.", "video.norm.": "norm_v."}
    names |= {"joint_norm.": "norm.", "audio.modality": "modality_a", "video.modality": "modality_v"}
    state = {}
    for key, value in source.state_dict().items():
        ours = next(k for k in names if key.startswith(k))
        state["module." + names[ours] + key[len(ours) :]] = value.clone()
    state["module.decoder_pred_a.weight"] = torch.zeros(2, 2)
    save_file(state, tmp_path / "cavmae.safetensors")
    target = TwoStreamBackbone(CAVMAE_LAYOUT)
    report = load_vit_weights(target, tmp_path / "cavmae.safetensors")
    assert report.layout == "CAV-MAE" and not report.kept and report.unused == ["decoder_pred_a.weight"]
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_files_that_do_not_fit_are_named(tmp_path):
    torch.save({"model": image_mae_state()}, tmp_path / "mae.pth")
    wider = TwoStreamBackbone(BackboneConfig(encoder="vit", dim=32, depth=1, heads=2, patch_size=4))
    with pytest.raises(ConfigError, match=r"model.backbone_init: .*mae.pth does not fit model.backbone .*patch_embed"):
        load_vit_weights(wider, tmp_path / "mae.pth")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="neither an image MAE"):
        load_vit_weights(TwoStreamBackbone(CAVMAE_LAYOUT), tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="needs model.backbone.encoder vit"):
        load_vit_weights(TwoStreamBackbone(BackboneConfig(width=4, layers=(1, 1, 1, 1))), tmp_path / "mae.pth")
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(ConfigError, match="model.backbone_init: .*notes.txt is not a checkpoint"):
        load_vit_weights(TwoStreamBackbone(CAVMAE_LAYOUT), tmp_path / "notes.txt")


def test_avssl_fit_initialises_from_the_file_and_says_what_it_loaded(tiny_root, tmp_path, caplog):
    torch.save({"model": image_mae_state()}, tmp_path / "mae.pth")
    args = ["fit", "--config=configs/simclr.yaml", "--config=configs/vit.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={tiny_root}"]
    args += [f"--model.init_args.backbone.{k}={v}" for k, v in (("dim", 16), ("depth", 2), ("heads", 2), ("patch_size", 4))]
    args += ["--model.init_args.proj_hidden_dim=16", "--model.init_args.proj_dim=8", "--data.short_side=40"]
    args += ["--data.augment.crop_size=16", "--data.sample_rate=16000", "--trainer.accelerator=cpu", "--trainer.fast_dev_run=1"]
    args += [f"--model.init_args.backbone_init={tmp_path / 'mae.pth'}", f"--trainer.default_root_dir={tmp_path}"]
    with caplog.at_level(logging.INFO, logger="avssl"):
        main(args)
    lines = [r.getMessage() for r in caplog.records if "backbone_init" in r.getMessage()]
    assert len(lines) == 1 and "image MAE / ViT layout): loaded 56 tensors" in lines[0], lines
