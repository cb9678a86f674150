"""Supervised baseline (paper Table 5): the same backbone trained with cross-entropy on the labels."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avssl.errors import ConfigError
from avssl.methods.base import SSLMethod


class Supervised(SSLMethod):
    """Cross-entropy on a linear classifier over the fused features of every view (the same
    augmentations as pre-training). Needs labelled data: ``num_classes`` is linked from the data
    module; samples labelled ``-1`` (unknown) are ignored, and a training split without any label
    is refused before training starts.

    Args:
        label_smoothing: label smoothing of the cross-entropy (0: plain).
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(self, *, label_smoothing: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if self.hparams.num_classes <= 0:
            raise ConfigError("model.num_classes: the supervised baseline needs labelled data (num_classes > 0)")
        self.classifier = nn.Linear(self.backbone.out_dim, self.hparams.num_classes)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "records"):
            if not any(r.label >= 0 for r in datamodule.records("train")):
                raise ConfigError("model: the supervised baseline needs labels, but no training video has one (data.root manifest)")

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        logits = self.classifier(features.flatten(0, 1))
        labels = batch["label"].repeat_interleave(n)
        return F.cross_entropy(logits, labels, ignore_index=-1, label_smoothing=self.hparams.label_smoothing), features
