"""A tiny pre-trained encoder shared by the evaluation tests."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl

import avssl
from tests.conftest import TINY


@pytest.fixture(scope="session")
def checkpoint(tiny_root, tmp_path_factory):
    """One SimCLR step at width 8 on the tiny synthetic dataset: 4 frames, 16 kHz, 40-px frames."""
    data = avssl.AVDataModule(
        synthetic_root=str(tiny_root),
        synthetic=TINY,
        batch_size=4,
        num_workers=0,
        short_side=40,
        sample_rate=16000,
        num_frames=4,
        augment=avssl.AugmentConfig(crop_size=32),
    )
    model = avssl.SimCLR(backbone=avssl.BackboneConfig(width=8, layers=(1, 1, 1, 1)), proj_hidden_dim=32, proj_dim=16)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, data)
    path = tmp_path_factory.mktemp("ckpt") / "encoder.ckpt"
    trainer.save_checkpoint(path)
    return path
