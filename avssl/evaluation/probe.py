"""The linear probe (paper section 3.4): linear classifiers trained on a frozen encoder.

Modes (``mode``):

* ``full`` (default, the paper's protocol): every epoch one random clip per training video, with
  the probe's views (:mod:`avssl.evaluation.base`), through the frozen encoder;
* ``cached`` (fast): features of ``train_clips`` uniformly spaced clips per training video,
  extracted once without augmentation, train the classifiers;
* ``knn`` (fast): a weighted cosine k-nearest-neighbour vote over those cached features
  (:class:`~avssl.evaluation.knn.KNNHead`); nothing is trained.

Linear modes: L2-normalised features (or non-affine BatchNorm, ``normalize: bn``, as MoCo v3),
SGD with lr = ``base_lr`` x global batch / 256 (base 30: batch 256 gives lr 30), momentum 0.9,
weight decay 0, cosine decay over the run (``trainer.max_epochs``, 100 in the paper). Test: each
video's prediction is the mean softmax over its ``data.eval_clips`` clips x ``data.eval_crops``
crops (:mod:`avssl.evaluation.base`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avssl.data.batch import decoded, decoded_on_device
from avssl.errors import ConfigError
from avssl.evaluation.base import RANDOM_INIT, EncoderEvaluation
from avssl.evaluation.knn import KNNHead
from avssl.evaluation.protocols import PROBE_MODES
from avssl.utils.dist import world_size
from avssl.utils.schedules import warmup_cosine

NORMALIZATIONS = ("l2", "bn")
# A frozen randomly initialised encoder normalises with its initial batch-norm statistics (mean 0,
# variance 1) unless they are re-estimated on the data: the baseline every margin is measured
# against has them re-estimated on the training clips; the initial ones are reported beside it.
RANDOM_INIT_INITIAL_BN = "random-init-initial-bn"


class ProbeHead(nn.Module):
    """Feature normalisation + linear classifier: ``l2`` (L2-normalise each feature vector) or
    ``bn`` (non-affine BatchNorm with cumulative statistics, as MoCo v3's probe)."""

    def __init__(self, dim: int, num_classes: int, normalize: str = "l2"):
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"model.normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.norm = nn.BatchNorm1d(dim, affine=False, momentum=None) if normalize == "bn" else None
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shape = features.shape[:-1]
        x = features.reshape(-1, features.shape[-1])
        x = self.norm(x) if self.norm is not None else F.normalize(x, dim=-1)
        return self.linear(x).view(*shape, -1)


class LinearProbe(EncoderEvaluation):
    """Linear (or kNN) evaluation of a frozen encoder, run by ``avssl test``.

    With ``baselines`` the random-init encoder is probed twice: with its batch-norm statistics
    re-estimated on the training clips (``random-init``, the baseline margins are measured against)
    and with its initial ones (``random-init-initial-bn``).

    Args:
        encoder_ckpt: pre-training checkpoint (required unless ``random_init``).
        mode: ``full`` (the paper's protocol), ``cached`` or ``knn`` (fast modes).
        base_lr: learning rate per 256 samples of global batch (paper: 30). The batch is
            ``data.batch_size`` per device (paper: 256); epochs are ``trainer.max_epochs``
            (paper: 100).
        normalize: ``l2`` (default) or ``bn``.
        train_clips: uniformly spaced clips per training video in the cached features.
        knn_k: neighbours of the kNN vote.
        knn_temperature: temperature of the kNN vote weights ``exp(sim / T)``.
        **kwargs: the :class:`~avssl.evaluation.base.EncoderEvaluation` arguments (``num_classes``,
            ``baselines``, ``seed``, ``output_dir``, ``override_input_settings``, ``backbone``,
            ``random_init``).
    """

    trains_encoder = False

    def __init__(
        self,
        encoder_ckpt: str | None = None,
        *,
        mode: str = "full",
        base_lr: float = 30.0,
        normalize: str = "l2",
        train_clips: int = 10,
        knn_k: int = 20,
        knn_temperature: float = 0.07,
        **kwargs: Any,
    ):
        if mode not in PROBE_MODES:
            raise ConfigError(f"model.mode must be one of {list(PROBE_MODES)}, got {mode!r}")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"model.normalize must be one of {list(NORMALIZATIONS)}, got {normalize!r}")
        if knn_k < 1:
            raise ConfigError(f"model.knn_k must be >= 1, got {knn_k}")
        if train_clips < 1:
            raise ConfigError(f"model.train_clips must be >= 1, got {train_clips}")
        super().__init__(encoder_ckpt, **kwargs)
        self.mode = mode
        if RANDOM_INIT in self.encoders:  # the same weights with the initial statistics, for comparison
            self.encoders[RANDOM_INIT_INITIAL_BN] = copy.deepcopy(self.encoders[RANDOM_INIT])
        self.build_heads()

    @property
    def uses_cached_features(self) -> bool:
        """Whether the classifiers learn from features cached once (``cached``, ``knn``)."""
        return self.mode != "full"

    def make_head(self, dim: int) -> nn.Module:
        """Normalisation + linear classifier, or the kNN vote in ``knn`` mode."""
        if self.mode == "knn":
            return KNNHead(self.hparams.num_classes, k=self.hparams.knn_k, temperature=self.hparams.knn_temperature)
        return ProbeHead(dim, self.hparams.num_classes, self.hparams.normalize)

    def set_bank(self, features: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
        """The kNN mode's training features (``"{encoder}/{readout}" -> [N, D]``) and labels."""
        for key, head in self.heads.items():
            head.set_bank(features[key].to(self.device), labels.to(self.device))

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoders.eval()  # frozen encoders keep BatchNorm in eval mode
        return self

    @property
    def estimates_baseline_statistics(self) -> bool:
        return RANDOM_INIT in self.encoders

    def estimate_baseline_statistics(self, loader, device: torch.device, progress: bool = True) -> None:
        """Re-estimate the random-init baseline's batch-norm statistics on ``loader``'s clips (one
        centre crop each), on ``device``; a no-op without that baseline. Deterministic clips:
        every rank computes the same."""
        from lightning_fabric.utilities.apply_func import move_data_to_device
        from tqdm.auto import tqdm

        if not self.estimates_baseline_statistics:
            return
        encoder, views = self.encoders[RANDOM_INIT].to(device), self.views.to(device)
        batches = tqdm(loader, desc="random-init batch-norm statistics", disable=not progress, leave=False)
        ready = (decoded_on_device(move_data_to_device(b, device)) for b in batches)
        encoder.estimate_norm_statistics(views.eval_views(b, [0.5]) for b in ready if b is not None)

    # ------------------------------------------------------------------ feature cache
    def predict_step(self, batch: dict, batch_idx: int) -> dict | None:
        """Features of every clip (one centre crop each) for the cached and kNN modes."""
        if not decoded(batch):
            return None
        return {"index": batch["index"], "label": batch["label"], "features": self.features(batch)}

    def configure_optimizers(self):
        """SGD (lr = base_lr x global batch / 256, momentum 0.9, no weight decay), cosine per step."""
        global_batch = self.batch_size * world_size() * self.trainer.accumulate_grad_batches
        optimizer = torch.optim.SGD(self.heads.parameters(), lr=self.hparams.base_lr * global_batch / 256, momentum=0.9, weight_decay=0.0)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total, 0))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
