import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from avssl import AugmentConfig, AVDataModule, SimCLR, TemporalAug
from avssl.callbacks import AugmentationPreview
from avssl.models.backbone import BackboneConfig
from tests.conftest import TINY


def test_preview_logs_frames_spectrograms_and_audio(tiny_root, tmp_path):
    data = AVDataModule(
        synthetic=TINY,
        synthetic_root=str(tiny_root),
        batch_size=4,
        num_workers=0,
        short_side=32,
        sample_rate=8000,
        augment=AugmentConfig(crop_size=16, temporal=[TemporalAug("RE", 0.5), TemporalAug("FD", 0.5, streams="audio")]),
    )
    model = SimCLR(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=16, proj_dim=8, num_classes=data.num_classes)
    logger = TensorBoardLogger(tmp_path, name="preview")
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=logger,
        callbacks=[AugmentationPreview(num_samples=2)],
        enable_checkpointing=False,
        limit_val_batches=0,
    )
    trainer.fit(model, data)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "audio": 0})
    events.Reload()
    images, audio = events.Tags()["images"], events.Tags()["audio"]
    for name in ("original", "0_RE_a0.5_both", "1_FD_a0.5_audio", "full_pipeline"):
        assert f"augment/{name}/frames" in images and f"augment/{name}/logmel" in images
        assert f"augment/{name}/audio_0" in audio
