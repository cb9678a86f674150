"""The views made of decoded clips, and who makes them.

A data module only loads clips (:mod:`avssl.data`); whoever consumes a batch turns it into model
inputs on the batch's device, in its own ``on_after_batch_transfer``:

* a pre-training method (:class:`~avssl.methods.base.SSLMethod`): training batches give each
  video's ``N`` randomly augmented views (:meth:`~avssl.augment.pipeline.AVTransform.train_views`:
  crop, flip, colour, the temporal augmentations of Table 1, pitch shift / noise, log-mel),
  validation and predict batches deterministic centre views;
* an evaluation (:mod:`avssl.evaluation.probe`, :mod:`avssl.evaluation.finetune`): training
  batches give the probe's views (section 3.4: the domain-specific augmentations only, at the
  test crops' size), feature extraction one centre crop per clip, and test batches every clip x
  ``eval_crops`` crops (the paper's 10 clips x 3 crops; the prediction is the mean softmax over
  them, :func:`~avssl.evaluation.multiview.mean_softmax`).

:class:`ViewSpec` holds the settings these transforms are built from. A config types them once,
under ``data:`` (``data.augment``, ``data.spectrogram``, ``data.eval_crops``, ``data.seed``, with
the clips' ``data.sample_rate``): the data module hands them over as
:attr:`~avssl.data.datamodule.AVDataModule.views`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avssl.augment.audio import SpectrogramConfig
from avssl.augment.pipeline import AugmentConfig, AVTransform
from avssl.errors import ConfigError


@dataclass(frozen=True)
class ViewSpec:
    """The settings of the views made of a data module's clips.

    Args:
        sample_rate: the clips' audio rate (Hz).
        augment: the training augmentations, the normalisation and the test crops' size.
        spectrogram: the log-mel parameters.
        eval_crops: square crops per clip in validation and testing: 1 (centre) or ``K`` evenly
            spaced along the frame's long side (3: left / centre / right, or top / centre / bottom
            for portrait video).
        seed: the base seed of the training views' random draws (:func:`batch_generator`).
    """

    sample_rate: int
    augment: AugmentConfig = AugmentConfig()
    spectrogram: SpectrogramConfig = SpectrogramConfig()
    eval_crops: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.eval_crops < 1:
            raise ConfigError(f"data.eval_crops must be >= 1, got {self.eval_crops}")

    @property
    def eval_positions(self) -> tuple[float, ...]:
        """Where each evaluation crop lies along the long side (0 = left / top, 1 = right / bottom)."""
        k = self.eval_crops
        return (0.5,) if k == 1 else tuple(i / (k - 1) for i in range(k))

    def transform(self) -> AVTransform:
        """The transform of these settings (its training views are pre-training's)."""
        return AVTransform(self.sample_rate, self.augment, self.spectrogram)


def batch_generator(trainer, seed: int, device: torch.device) -> torch.Generator:
    """The generator of a training batch's views, seeded from (seed, batch number, rank):
    reproducible, restored on resume (Lightning saves the loop's progress), different for every
    micro-batch of an accumulated optimiser step and for every rank."""
    batch_number = trainer.fit_loop.epoch_loop.batch_progress.total.ready  # batches before this one
    generator = torch.Generator(device=device)
    return generator.manual_seed(hash((seed, batch_number, trainer.global_rank)) & 0x7FFF_FFFF_FFFF_FFFF)
