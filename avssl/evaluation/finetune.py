"""Fine-tuning: a pre-trained encoder trained end to end with a classifier (``configs/finetune.yaml``).

    avssl test --config finetune.yaml --model.encoder_ckpt CKPT --data.root data/UCF101 --data.split 1
    avssl transfer finetune --ckpt CKPT --root data/UCF101 --split all

A sibling of the linear probe on the same base (:mod:`avssl.evaluation.base`) and workflow
(:mod:`avssl.workflows.linear`): ``Trainer.fit`` on one augmented clip per training video per
epoch (the probe's views: domain-specific augmentations, no temporal ones), then ``Trainer.test``
with each test video's prediction the mean softmax over ``data.eval_clips`` clips x
``data.eval_crops`` crops. What differs: the encoder of the data's streams is trained too
(BatchNorm in training mode), the
classifier is dropout + linear on the pooled features, and the optimiser is AVID-CMA's for UCF101
/ HMDB51 (Morgado et al., CVPR 2021, released configs ``benchmark/ucf/8at16``): Adam, lr 1e-4 for
every parameter, no weight decay, the rate multiplied by 0.3 after epochs 6, 10 and 14 of 16,
dropout 0.5. (AVID-CMA also trains the classifier alone for a first warm-up phase; this does not.)

One readout is fine-tuned: the fused features for audio-visual data, the only stream's for
single-stream data (UCF101 and HMDB51 train the video encoder, ESC-50 the audio encoder). With
``baselines: true`` the same architecture is also trained from scratch (random init) beside it.
Checkpoints hold the fine-tuned encoder with the classifier.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from avssl.errors import ConfigError
from avssl.evaluation.base import EncoderEvaluation


class FineTune(EncoderEvaluation):
    """End-to-end fine-tuning of a pre-trained encoder with a classifier, run by ``avssl test``.

    Args:
        encoder_ckpt: pre-training checkpoint (required unless ``random_init``).
        lr: Adam learning rate of the encoder and the classifier (AVID-CMA: 1e-4).
        weight_decay: Adam weight decay (AVID-CMA: 0).
        milestones: epochs after which the rate is multiplied by ``gamma`` (AVID-CMA: 6, 10, 14
            of 16 epochs; ``trainer.max_epochs`` sets the length).
        gamma: the rate's factor at each milestone (AVID-CMA: 0.3).
        dropout: dropout before the linear classifier (AVID-CMA: 0.5).
        **kwargs: the :class:`~avssl.evaluation.base.EncoderEvaluation` arguments (``num_classes``,
            ``baselines``: the architecture is also trained from scratch, ``seed``, ``output_dir``,
            ``override_input_settings``, ``backbone``, ``random_init``).
    """

    mode = "finetune"  # names its results (keys, table, results.json)
    trains_encoder = True

    def __init__(
        self,
        encoder_ckpt: str | None = None,
        *,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        milestones: tuple[int, ...] = (6, 10, 14),
        gamma: float = 0.3,
        dropout: float = 0.5,
        **kwargs: Any,
    ):
        if not lr > 0 or weight_decay < 0 or not 0 < gamma <= 1 or not 0 <= dropout < 1:
            raise ConfigError(
                f"model: fine-tuning needs lr > 0, weight_decay >= 0, 0 < gamma <= 1 and 0 <= dropout < 1, "
                f"got lr={lr}, weight_decay={weight_decay}, gamma={gamma}, dropout={dropout}"
            )
        super().__init__(encoder_ckpt, **kwargs)
        self.build_heads()
        self.encoders.requires_grad_(True).train()  # Lightning keeps a submodule's mode: the loaded encoder is in eval mode

    @staticmethod
    def readouts_for(streams: tuple[str, ...]) -> tuple[str, ...]:
        """One readout: the fused features for audio-visual data, else the stream's."""
        return ("fused",) if len(streams) == 2 else tuple(streams)

    def make_head(self, dim: int) -> nn.Module:
        """Dropout + linear on the pooled features."""
        return nn.Sequential(nn.Dropout(self.hparams.dropout), nn.Linear(dim, self.hparams.num_classes))

    def attach(self, datamodule) -> None:
        """As every evaluation's, keeping one readout: fused for audio-visual data, else the stream's;
        the encoder of a stream the data lacks is not trained (its parameters are frozen)."""
        super().attach(datamodule)
        for encoder in self.encoders.values():
            for stream in ("video", "audio"):
                getattr(encoder, stream).requires_grad_(stream in datamodule.streams)

    def configure_optimizers(self):
        """Adam over the classifier and the trained encoders, step decay by epoch."""
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(self.hparams.milestones), gamma=self.hparams.gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
