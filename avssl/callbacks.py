"""Training callbacks: augmentation previews in TensorBoard (paper Figure 1), and a progress bar
that reads the logged metrics only when Lightning writes them."""

from __future__ import annotations

import dataclasses
import logging

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from avssl.augment.audio import AudioAugConfig
from avssl.augment.pipeline import AVTransform
from avssl.augment.video import ColorConfig
from avssl.data.batch import collate, decoded_on_device

log = logging.getLogger(__name__)


class AugmentationPreview(pl.Callback):
    """At the start of fit, log a few training samples to TensorBoard: the original clip, each
    configured temporal augmentation alone (at its alpha, p = 1) and the full training pipeline —
    as frame grids (one row per clip), log-mel images and audio.

    Args:
        num_samples: videos to preview (their first clip).
        seed: seed of the previewed augmentation draws.
    """

    def __init__(self, num_samples: int = 4, seed: int = 0):
        super().__init__()
        self.num_samples, self.seed = num_samples, seed

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if logger is None:
            log.warning("AugmentationPreview: no TensorBoardLogger configured; nothing logged")
            return
        if not isinstance(getattr(pl_module, "views", None), AVTransform):
            log.warning("AugmentationPreview: %s makes no pre-training views; nothing logged", type(pl_module).__name__)
            return
        datamodule = trainer.datamodule
        dataset = datamodule.dataset("train", train=True)
        samples = [dataset[(0, i)] for i in range(min(self.num_samples, len(dataset)))]
        batch = decoded_on_device({k: v.to(pl_module.device) if torch.is_tensor(v) else v for k, v in collate(samples).items()})
        if batch is None or "video" not in batch:
            return
        batch = {k: v[:, :1] if k in ("video", "audio") else v for k, v in batch.items()}  # each video's first clip
        transform: AVTransform = pl_module.views  # the method's pre-training views
        for name, variant in self._variants(transform).items():
            views = variant.to(pl_module.device).train_views(batch, self._generator(pl_module.device), keep_wave=True)
            self._log(logger.experiment, name, views, transform, trainer.global_step)

    def _variants(self, transform: AVTransform) -> dict[str, AVTransform]:
        """Original (no augmentation), each temporal augmentation alone, and the full pipeline."""
        cfg, rate, spec_cfg = transform.cfg, transform.audio_aug.sample_rate, transform.logmel.config
        plain = dataclasses.replace(
            cfg,
            crop_scale=(1.0, 1.0),
            crop_ratio=(1.0, 1.0),
            flip_p=0.0,
            color=ColorConfig(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0),
            audio=AudioAugConfig(pitch_p=0.0, noise_p=0.0),
            temporal=[],
        )
        variants = {"original": AVTransform(rate, plain, spec_cfg)}
        for i, aug in enumerate(cfg.temporal):
            single = dataclasses.replace(plain, temporal=[dataclasses.replace(aug, p=1.0)])
            variants[f"{i}_{aug.name}_a{aug.alpha:g}_{aug.streams}"] = AVTransform(rate, single, spec_cfg)
        variants["full_pipeline"] = transform
        return variants

    def _generator(self, device: torch.device) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(self.seed)

    @staticmethod
    def _log(writer, name: str, views: dict, transform: AVTransform, step: int) -> None:
        mean = torch.tensor(transform.cfg.mean, device=views["video"].device).view(1, 3, 1, 1, 1)
        std = torch.tensor(transform.cfg.std, device=views["video"].device).view(1, 3, 1, 1, 1)
        video = (views["video"][:, 0] * std + mean).clamp(0, 1)  # [B, 3, T, h, w]
        frames = video.transpose(1, 2).flatten(0, 1)  # [B * T, 3, h, w], one row per clip
        writer.add_image(f"augment/{name}/frames", make_grid(frames.cpu(), nrow=video.shape[2]), step)
        spec = views["spec"][:, 0, 0]  # [B, n_mels, frames]
        spec = (spec - spec.amin(dim=(1, 2), keepdim=True)) / (
            spec.amax(dim=(1, 2), keepdim=True) - spec.amin(dim=(1, 2), keepdim=True) + 1e-6
        )
        writer.add_image(f"augment/{name}/logmel", make_grid(spec.flip(1).unsqueeze(1).cpu(), nrow=1), step)
        rate = transform.audio_aug.sample_rate
        for i, wave in enumerate(views["wave"][:, 0]):
            writer.add_audio(f"augment/{name}/audio_{i}", wave.clamp(-1, 1).unsqueeze(0).cpu(), step, sample_rate=rate)


class LoggingStepProgressBar(TQDMProgressBar):
    """Lightning's progress bar, refreshed every ``trainer.log_every_n_steps`` steps, showing the
    logged training metrics (``train/*``, ``probe/*``, without the prefix).

    Metrics logged with ``prog_bar=True`` are read back to the host by Lightning after every step
    (a host synchronisation per metric and step on a GPU); avssl logs them for the loggers only,
    and this bar reads them when it refreshes, on the logging steps, as the loggers' writes do."""

    PREFIXES = ("train/", "probe/")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._refresh_rate = max(1, trainer.log_every_n_steps)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Show where the run ended (``max_steps`` may end it between two refreshes) before closing."""
        bar = self._train_progress_bar
        if bar is not None and not bar.disable:
            bar.n = trainer.fit_loop.epoch_loop.batch_progress.current.processed  # batches of this epoch
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()
        super().on_train_end(trainer, pl_module)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        shown = {
            key.split("/", 1)[1]: float(value)
            for key, value in trainer.logged_metrics.items()
            if key.startswith(self.PREFIXES) and torch.is_tensor(value) and value.numel() == 1
        }
        return {**super().get_metrics(trainer, pl_module), **shown}
