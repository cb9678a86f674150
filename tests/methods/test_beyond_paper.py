"""The methods beyond the paper's four (VICReg, Barlow Twins, cross-modal, CAV-MAE) through the library's
paths: ``avssl fit`` in bf16, a resumed run equal to an uninterrupted one, and the encoder read
back by what every evaluation (probe, transfer, features) loads it with."""

from __future__ import annotations

import pytest
import torch

from avssl.cli import main
from avssl.evaluation.encoder import load_encoder
from tests.conftest import TINY_DATA_ARGS

HEADS = ["--model.init_args.proj_hidden_dim=32", "--model.init_args.proj_dim=16"]
SETTINGS = {  # each method with its non-default paths switched on
    "vicreg": [],
    "barlow_twins": [],
    "cross_modal": ["--model.init_args.positive=other_clip", "--model.init_args.video_weight=0.5"],
    "cavmae": [  # ViT-B and its decoder at test size; the masks' generator is restored on resume
        *(f"--model.init_args.backbone.{k}={v}" for k, v in (("dim", 16), ("depth", 1), ("heads", 2), ("patch_size", 8))),
        *(f"--model.init_args.decoder_{k}={v}" for k, v in (("dim", 16), ("depth", 1), ("heads", 2))),
    ],
}


def fit(method, root, out, epochs, *extra):
    heads = [] if method == "cavmae" else HEADS
    args = ["fit", f"--config=configs/{method}.yaml", *TINY_DATA_ARGS, f"--data.synthetic_root={root}", *heads, *SETTINGS[method]]
    args += ["--model.init_args.backbone.width=4", "--model.init_args.backbone.layers=[1, 1, 1, 1]", "--model.init_args.num_classes=4"]
    args += ["--data.short_side=40", "--data.augment.crop_size=32", "--data.sample_rate=16000", "--trainer.accelerator=cpu"]
    args += ["--trainer.precision=bf16-mixed", f"--trainer.max_epochs={epochs}", "--trainer.limit_train_batches=2"]
    args += ["--trainer.limit_val_batches=1", f"--trainer.logger.init_args.save_dir={out}", f"--trainer.callbacks.init_args.dirpath={out}"]
    main([*args, *extra])
    return torch.load(out / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_fit_in_bf16_resumes_to_the_uninterrupted_state_and_evaluations_read_the_encoder(method, tiny_root, tmp_path):
    straight = fit(method, tiny_root, tmp_path / "straight", 2)
    first = fit(method, tiny_root, tmp_path / "resumed", 1)
    assert first["global_step"] == 2
    resumed = fit(method, tiny_root, tmp_path / "resumed", 2, f"--ckpt_path={tmp_path / 'resumed' / 'last.ckpt'}")
    assert resumed["global_step"] == straight["global_step"] == 4
    assert resumed["state_dict"].keys() == straight["state_dict"].keys()
    for key, value in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=0, msg=key)
        assert torch.isfinite(value.float()).all(), key
    changed = [k for k, v in first["state_dict"].items() if k.startswith("backbone.") and not torch.equal(v, straight["state_dict"][k])]
    assert changed, "the second epoch left the encoder unchanged"

    encoder = load_encoder(tmp_path / "straight" / "last.ckpt")  # what the probe, transfer and features load
    backbone = {k.removeprefix("backbone."): v for k, v in straight["state_dict"].items() if k.startswith("backbone.")}
    loaded = encoder.backbone.state_dict()
    assert loaded.keys() == backbone.keys()
    assert all(torch.equal(loaded[k], backbone[k]) for k in backbone)
    if method == "cross_modal":  # its projectors come along: audio-video retrieval compares through them
        heads = {k.removeprefix("projectors."): v for k, v in straight["state_dict"].items() if k.startswith("projectors.")}
        loaded = encoder.stream_projectors.state_dict()
        assert heads and loaded.keys() == heads.keys() and all(torch.equal(loaded[k], heads[k]) for k in heads)
    else:
        assert encoder.stream_projectors is None
