"""The linear evaluation workflow on Lightning's loops (what ``avssl test`` runs).

    linear_evaluation(trainer, probe, datamodule)

0. With a random-init baseline, its batch-norm statistics are re-estimated on one centre clip
   of every training video (:meth:`~avssl.evaluation.probe.LinearProbe.estimate_baseline_statistics`).
1. ``cached`` / ``knn`` modes: ``Trainer.predict`` extracts the frozen encoder's features of
   ``train_clips`` uniformly spaced clips per training video; under DDP each rank extracts its
   shard and the shards are gathered once (one row per video: a distributed sampler's padding is
   dropped).
2. ``full`` / ``cached`` modes: ``Trainer.fit`` trains the classifiers (on augmented views of the
   training videos, or on the cached features); ``ckpt_path`` resumes an interrupted probe.
3. ``Trainer.test`` scores every test video once: mean softmax over its clips x crops.

The trainer is given the loaders of this protocol's clips (one random clip per training video,
or the cached features; every test clip), not the data module's pre-training loaders; the probe
makes their views itself (:mod:`avssl.evaluation.base`).
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from avssl.errors import ConfigError
from avssl.evaluation.base import EncoderEvaluation
from avssl.evaluation.multiview import PredictionStore
from avssl.evaluation.probe import LinearProbe

log = logging.getLogger(__name__)


class FeatureDataset(Dataset):
    """Cached features as a dataset: item ``i`` is ``{"features": {key: [D]}, "label": int}``."""

    def __init__(self, features: dict[str, torch.Tensor], labels: torch.Tensor):
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"features": {k: v[i] for k, v in self.features.items()}, "label": self.labels[i]}


def cache_features(trainer: pl.Trainer, probe: LinearProbe, loader: DataLoader) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``({"{encoder}/{readout}": [N * clips, D]}, labels [N * clips])`` of every video the loader
    yields, gathered from every rank, in video order."""
    store = PredictionStore()
    for out in trainer.predict(probe, dataloaders=loader, return_predictions=True) or []:
        if out is not None:
            store.add(out["index"], out["label"], out["features"])
    index, labels, features = store.collect()
    if len(index) == 0:
        raise ConfigError("data: no training video could be decoded for the linear probe")
    clips = next(iter(features.values())).shape[1]
    log.info("cached features of %d training clips (%d videos)", len(index) * clips, len(index))
    return {k: v.flatten(0, 1) for k, v in features.items()}, labels.repeat_interleave(clips)


def linear_evaluation(trainer: pl.Trainer, probe: EncoderEvaluation, datamodule, *, ckpt_path: str | None = None) -> None:
    """Train ``probe`` (a :class:`~avssl.evaluation.probe.LinearProbe` or a
    :class:`~avssl.evaluation.finetune.FineTune`) on the training split of ``datamodule`` and test
    it on the test split."""
    datamodule.prepare_data()  # builds the synthetic dataset on first use
    probe.attach(datamodule)
    train_records = datamodule.records("train")
    if any(r.label < 0 for r in train_records):
        raise ConfigError("data: the train split has unlabelled videos; linear evaluation needs a label for every training video")
    # the random-init baseline normalises with the training clips' statistics, not its initial ones
    if probe.estimates_baseline_statistics:  # its clips are indexed only then
        centre_clips = datamodule.loader(datamodule.dataset("train", train=False, num_clips=1), shuffle=False)
        probe.estimate_baseline_statistics(centre_clips, trainer.strategy.root_device, progress=trainer.is_global_zero)
    if probe.uses_cached_features:
        dataset = datamodule.dataset("train", train=False, num_clips=probe.hparams.train_clips)
        features, labels = cache_features(trainer, probe, datamodule.loader(dataset, shuffle=False))
        probe.num_train_videos = len(labels) // probe.hparams.train_clips
        if probe.mode == "knn":
            probe.set_bank(features, labels)
        else:
            loader = DataLoader(FeatureDataset(features, labels), batch_size=datamodule.batch_size, shuffle=True)
            trainer.fit(probe, train_dataloaders=loader, ckpt_path=ckpt_path)
    else:
        dataset = datamodule.dataset("train", train=True, num_clips=1)
        probe.num_train_videos = len(dataset)
        loader = datamodule.loader(dataset, shuffle=True)
        trainer.fit(probe, train_dataloaders=loader, ckpt_path=ckpt_path)
    test_loader = datamodule.test_dataloader()
    # every file left out, named, beside the numbers it did not enter (results.json)
    probe.skipped_files = {key: dict(ds.skipped_files) for key, ds in datamodule.datasets.items() if ds.skipped_files}
    trainer.test(probe, dataloaders=test_loader)
