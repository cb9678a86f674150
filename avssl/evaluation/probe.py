"""The linear probe: a LightningModule that trains linear classifiers on a frozen encoder.

Trained by ``Trainer.fit`` and scored by ``Trainer.test`` (driven by
:func:`avssl.workflows.linear.linear_evaluation`, which ``avssl test`` runs), so progress bars,
logging, checkpoints, resume and DDP come from Lightning. One module holds every classifier of a
run: one per encoder (the pre-trained one, and with ``baselines`` the same architecture randomly
initialised) and readout (``fused``, ``audio``, ``video`` features). Their losses are summed;
their parameters are disjoint, so each trains exactly as it would alone.

Modes (``mode``):

* ``full`` (default, the paper's protocol, section 3.4): every epoch one random clip per training
  video, with the domain-specific augmentations only (no temporal ones), at the test crops'
  resolution, through the frozen encoder;
* ``cached`` (fast): features of ``train_clips`` uniformly spaced clips per training video,
  extracted once without augmentation, train the classifiers;
* ``knn`` (fast): a weighted cosine k-nearest-neighbour vote over those cached features; nothing
  is trained.

Linear modes: L2-normalised features (or non-affine BatchNorm, ``normalize: bn``, as MoCo v3),
SGD with lr = ``base_lr`` x global batch / 256 (base 30: batch 256 gives lr 30), momentum 0.9,
weight decay 0, cosine decay over the run (``trainer.max_epochs``, 100 in the paper). Test: each
video's prediction is the mean softmax over its ``data.eval_clips`` clips x ``data.eval_crops``
crops; exactly one prediction per video is kept, also under DDP.
"""

from __future__ import annotations

import copy
import logging

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from avssl.augment.pipeline import AVTransform
from avssl.data.datamodule import batch_generator
from avssl.data.dataset import decoded
from avssl.data.store.frames import decode_frames
from avssl.errors import ConfigError
from avssl.evaluation.encoder import PretrainedEncoder, load_encoder
from avssl.evaluation.knn import knn_predict
from avssl.evaluation.multiview import PredictionStore, mean_softmax
from avssl.evaluation.protocols import PROBE_MODES
from avssl.evaluation.results import READOUTS, evaluation_results, format_table, write_results
from avssl.guards import FiniteGuard, NonFiniteLossError, logging_step
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.utils.dist import world_size
from avssl.utils.plain import plain
from avssl.utils.schedules import warmup_cosine

log = logging.getLogger(__name__)
NORMALIZATIONS = ("l2", "bn")
# A frozen randomly initialised encoder normalises with its initial batch-norm statistics (mean 0,
# variance 1) unless they are re-estimated on the data: the baseline every margin is measured
# against has them re-estimated on the training clips; the initial ones are reported beside it.
RANDOM_INIT = "random-init"
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


class LinearProbe(pl.LightningModule):
    """Linear (or kNN) evaluation of a frozen encoder, run by ``avssl test``.

    Args:
        encoder_ckpt: pre-training checkpoint (required unless ``random_init``). The
            evaluation takes the checkpoint's input settings (frames, clip length, audio rate,
            spectrogram, normalisation) and dataset (see :mod:`avssl.evaluation.encoder`).
        num_classes: classes (linked from the data).
        mode: ``full`` (the paper's protocol), ``cached`` or ``knn`` (fast modes).
        base_lr: learning rate per 256 samples of global batch (paper: 30). The batch is
            ``data.batch_size`` per device (paper: 256); epochs are ``trainer.max_epochs``
            (paper: 100).
        normalize: ``l2`` (default) or ``bn``.
        train_clips: uniformly spaced clips per training video in the cached features.
        knn_k: neighbours of the kNN vote.
        knn_temperature: temperature of the kNN vote weights ``exp(sim / T)``.
        baselines: also probe the same architecture randomly initialised, and report chance.
        seed: seed of the random-init encoder, of the classifiers' initialisation and of the
            probe's augmentation draws.
        output_dir: where ``results.json`` goes (default: the logger's directory).
        override_input_settings: evaluate with explicitly set input settings that differ from the
            encoder's pre-training ones (logged) instead of refusing them.
        backbone: the architecture of the randomly initialised encoder when ``encoder_ckpt`` is
            null; with a checkpoint the architecture is the checkpoint's (setting it is an error).
        random_init: probe a randomly initialised encoder (built from ``backbone``) instead of a
            pre-trained one: without a checkpoint this must be set, so a forgotten
            ``encoder_ckpt`` is an error rather than a plausible table of random features.
    """

    trains_encoder = False  # a frozen encoder; :class:`avssl.evaluation.finetune.FineTune` trains it

    def __init__(
        self,
        encoder_ckpt: str | None = None,
        *,
        num_classes: int = 0,
        mode: str = "full",
        base_lr: float = 30.0,
        normalize: str = "l2",
        train_clips: int = 10,
        knn_k: int = 20,
        knn_temperature: float = 0.07,
        baselines: bool = False,
        seed: int = 0,
        output_dir: str | None = None,
        override_input_settings: bool = False,
        backbone: BackboneConfig | None = None,
        random_init: bool = False,
    ):
        super().__init__()
        if encoder_ckpt is None and not random_init:
            raise ConfigError(
                "model.encoder_ckpt: no pre-trained encoder given; set model.init_args.encoder_ckpt=PRETRAIN.ckpt "
                "(or, to evaluate a randomly initialised encoder on purpose, model.init_args.random_init=true)"
            )
        if encoder_ckpt is not None and random_init:
            raise ConfigError("model.random_init: a random-init probe takes no model.encoder_ckpt; set one of the two")
        if num_classes < 2:
            raise ConfigError(
                f"data.root: linear evaluation needs labelled data with >= 2 classes, the data has {num_classes} "
                "(model.num_classes comes from it); set data.root to a labelled dataset (AVE, a manifest.csv with labels, "
                "UCF101 / HMDB51 / ESC-50 / VGGSound), not a folder of unlabelled videos (without data.root, avssl test "
                "takes the encoder's pre-training data)"
            )
        if mode not in PROBE_MODES:
            raise ConfigError(f"model.mode must be one of {list(PROBE_MODES)}, got {mode!r}")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"model.normalize must be one of {list(NORMALIZATIONS)}, got {normalize!r}")
        if knn_k < 1:
            raise ConfigError(f"model.knn_k must be >= 1, got {knn_k}")
        if train_clips < 1:
            raise ConfigError(f"model.train_clips must be >= 1, got {train_clips}")
        if isinstance(backbone, dict):  # from a probe checkpoint's hparams
            backbone = BackboneConfig(**backbone)
        if encoder_ckpt is not None and backbone is not None:
            raise ConfigError("model.backbone: the architecture comes from model.encoder_ckpt; leave model.backbone unset")
        self.save_hyperparameters()
        self.mode = mode
        self.pretrained: PretrainedEncoder | None = load_encoder(encoder_ckpt) if encoder_ckpt is not None else None
        arch = self.pretrained.architecture if self.pretrained else (backbone or BackboneConfig())
        self.architecture = arch
        self.encoders = nn.ModuleDict()
        if self.pretrained is not None:
            self.encoders["pretrained"] = self.pretrained.backbone
        if self.pretrained is None or baselines:
            torch.manual_seed(seed)
            self.encoders[RANDOM_INIT] = TwoStreamBackbone(arch).requires_grad_(False)
            if not self.trains_encoder:  # the same weights with the initial statistics, for comparison
                self.encoders[RANDOM_INIT_INITIAL_BN] = copy.deepcopy(self.encoders[RANDOM_INIT])
        torch.manual_seed(seed)
        some = next(iter(self.encoders.values()))
        dims = {"fused": some.out_dim, "audio": some.audio.out_dim, "video": some.video.out_dim}
        self.heads = nn.ModuleDict(
            {f"{enc}/{r}": self.make_head(dims[r]) for enc in self.encoders for r in READOUTS} if mode != "knn" else {}
        )
        self.views: AVTransform | None = None  # the data's transform and the probe's training views, set by attach()
        self.train_views: AVTransform | None = None
        self.eval_positions: list[float] = [0.5]
        self.batch_size = 256
        self.bank: dict[str, torch.Tensor] = {}  # kNN: "{encoder}/{readout}" -> cached training features
        self.bank_labels: torch.Tensor | None = None
        self.store = PredictionStore()
        self.evaluation_data: dict = {}
        self.readouts: tuple[str, ...] = READOUTS  # narrowed by attach() for single-stream data
        self.dataset: dict = {}  # the evaluation data's layout and split, set by attach()
        self.num_train_videos = 0  # set by the workflow (decodable training videos)
        self.skipped_files: dict[str, dict[str, str]] = {}  # set by the workflow: {dataset: {file: reason}}
        self.finite = FiniteGuard("probe loss", "the encoder's features or the probe's learning rate (model.base_lr) are not usable")

    @staticmethod
    def readouts_for(streams: tuple[str, ...]) -> tuple[str, ...]:
        """The readouts evaluated on data with ``streams``: every one for audio-visual data, the
        stream's own for single-stream data."""
        return READOUTS if len(streams) == 2 else tuple(streams)

    def make_head(self, dim: int) -> nn.Module:
        """The classifier of one readout: normalisation + linear."""
        return ProbeHead(dim, self.hparams.num_classes, self.hparams.normalize)

    # ------------------------------------------------------------------ wiring
    def attach(self, datamodule) -> None:
        """Take the views (the data module's transform, its test crop positions and settings).
        The data's input settings must be the encoder's (``avssl test`` sets them from the
        checkpoint): a conflict is a :class:`ConfigError` unless ``override_input_settings``."""
        if self.pretrained is not None and self.pretrained.input is not None:
            self.pretrained.input.check(datamodule.input_spec, override=self.hparams.override_input_settings, source=self.pretrained.path)
        self.readouts = self.readouts_for(datamodule.streams)
        for key in [k for k in self.heads if k.split("/")[1] not in self.readouts]:
            del self.heads[key]
        self.views = datamodule.transform
        self.train_views = datamodule.transform.probe_views()  # shares the log-mel and audio modules
        self.eval_positions = list(datamodule.eval_positions)
        self.batch_size = datamodule.batch_size  # per device, as in pre-training
        self.evaluation_data = dict(datamodule.hparams)
        self.dataset = {"layout": datamodule.layout, "split": datamodule.official_split}

    @property
    def estimates_baseline_statistics(self) -> bool:
        """Whether a frozen random-init baseline needs its batch-norm statistics from the data."""
        return RANDOM_INIT in self.encoders and not self.trains_encoder

    def estimate_baseline_statistics(self, loader, device: torch.device, progress: bool = True) -> None:
        """Re-estimate the random-init baseline's batch-norm statistics on ``loader``'s clips (one
        centre crop each), on ``device``; a no-op without that baseline or when the encoder trains
        (fine-tuning learns its statistics). Deterministic clips: every rank computes the same."""
        from lightning_fabric.utilities.apply_func import move_data_to_device
        from tqdm.auto import tqdm

        if not self.estimates_baseline_statistics:
            return
        encoder, views = self.encoders[RANDOM_INIT].to(device), self.views.to(device)
        batches = tqdm(loader, desc="random-init batch-norm statistics", disable=not progress, leave=False)
        moved = (decode_frames(move_data_to_device(b, device)) for b in batches)
        encoder.estimate_norm_statistics(views.eval_views(b, [0.5]) for b in moved if decoded(b))

    def set_bank(self, features: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
        """The kNN mode's training features (``"{encoder}/{readout}" -> [N, D]``) and labels."""
        self.bank = {k: v.to(self.device) for k, v in features.items()}
        self.bank_labels = labels.to(self.device)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.trains_encoder:
            self.encoders.eval()  # frozen encoders keep BatchNorm in eval mode
        return self

    def on_fit_start(self) -> None:
        if self.trainer.datamodule is not None:  # its hook would give pre-training views
            raise ConfigError(
                "LinearProbe trains through avssl.evaluation.linear_evaluation(trainer, probe, datamodule), not with a datamodule"
            )

    # ------------------------------------------------------------------ views and features
    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Training batches (full mode): the probe's augmented views (domain-specific only, at the
        test crop size). Feature extraction for the cache: one centre crop per clip. Test: the
        data's ``eval_crops`` crops per clip."""
        if "features" in batch:
            return batch
        batch = decode_frames(batch)  # a store's JPEG frames with decode_on: device
        if not decoded(batch):  # every sample failed to decode
            return batch
        trainer, device = self.trainer, batch["label"].device
        if trainer.training:
            generator = batch_generator(trainer, self.hparams.seed, device)
            return self.train_views.to(device).train_views(batch, generator)
        positions = [0.5] if trainer.predicting else self.eval_positions
        return self.views.to(device).eval_views(batch, positions)

    def features(self, batch: dict) -> dict[str, torch.Tensor]:
        """``"{encoder}/{readout}" -> [B, V, D]`` features of the batch's views ``[B, V, ...]``
        (without gradient unless the encoder trains and this is a training step); single-stream
        data gives that stream's readout only."""
        out = {}
        with torch.set_grad_enabled(self.trains_encoder and self.training and torch.is_grad_enabled()):
            for name, encoder in self.encoders.items():
                out.update({f"{name}/{readout}": value for readout, value in encoder.encode_views(batch).items()})
        return out

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if "features" in batch:  # cached mode: {"features": {key: [B, D]}, "label": [B]}
            features, labels = {k: v[:, None] for k, v in batch["features"].items()}, batch["label"]
        elif decoded(batch):  # full mode: one augmented clip per video
            features, labels = self.features(batch), batch["label"]
        else:
            return None  # every sample of the batch failed to decode (counted by the data)
        losses = {
            key: F.cross_entropy(head(features[key].flatten(0, 1)), labels.repeat_interleave(features[key].shape[1]))
            for key, head in self.heads.items()
        }
        loss = torch.stack(list(losses.values())).sum()
        self.log("probe/loss", loss.detach() / len(losses), batch_size=labels.shape[0])  # shown by LoggingStepProgressBar
        self.finite.record(loss, self.global_step, batch.get("video_id", []))
        if logging_step(self._trainer):
            self.finite.check()
        return loss

    def on_train_epoch_end(self) -> None:
        self.finite.check()

    def configure_optimizers(self):
        """SGD (lr = base_lr x global batch / 256, momentum 0.9, no weight decay), cosine per step."""
        global_batch = self.batch_size * world_size() * self.trainer.accumulate_grad_batches
        optimizer = torch.optim.SGD(self.heads.parameters(), lr=self.hparams.base_lr * global_batch / 256, momentum=0.9, weight_decay=0.0)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total, 0))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ feature cache
    def predict_step(self, batch: dict, batch_idx: int) -> dict | None:
        """Features of every clip (one centre crop each) for the cached and kNN modes."""
        if not decoded(batch):
            return None
        return {"index": batch["index"], "label": batch["label"], "features": self.features(batch)}

    # ------------------------------------------------------------------ test
    def on_test_start(self) -> None:
        self.store = PredictionStore()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        if not decoded(batch):
            return
        probs = {}
        for key, value in self.features(batch).items():  # [B, clips * crops, D]
            encoder, readout = key.split("/")
            if self.mode == "knn":
                p = knn_predict(
                    value.flatten(0, 1),
                    self.bank[key],
                    self.bank_labels,
                    self.hparams.num_classes,
                    k=self.hparams.knn_k,
                    temperature=self.hparams.knn_temperature,
                )
                probs[f"{encoder}/knn/{readout}"] = p.view(*value.shape[:2], -1).mean(1)  # mean over the views
            else:
                probs[f"{encoder}/{self.mode}/{readout}"] = mean_softmax(self.heads[key](value))
        self.store.add(batch["index"], batch["label"], probs)

    def on_test_epoch_end(self) -> None:
        index, labels, probs = self.store.collect()  # one row per video, every rank
        broken = sorted(key for key, p in probs.items() if not torch.isfinite(p).all())
        if broken:  # never a results.json from NaN predictions (they would score as chance)
            raise NonFiniteLossError(f"non-finite test predictions of {broken}: no result written (the encoder's features are not finite)")
        results = evaluation_results(probs, labels, self.hparams.num_classes, chance=self.hparams.baselines, readouts=self.readouts)
        for key, value in results.items():
            self.log_dict({f"test/{key}/{m}": v for m, v in value.items()}, sync_dist=False)
        if self.trainer.is_global_zero:
            print(format_table(results, mode=self.mode))
            write_results(self, results, num_videos=len(index))

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """A probe checkpoint holds the classifiers, not the frozen encoders (rebuilt from
        ``encoder_ckpt`` and ``seed``), plus the encoder's hash so a resume cannot mix encoders."""
        if not self.trains_encoder:
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("encoders.")}
        checkpoint["hyper_parameters"] = plain(dict(checkpoint["hyper_parameters"]))  # weights-only loadable
        checkpoint["encoder_sha256"] = self.pretrained.sha256 if self.pretrained else None

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        ours = self.pretrained.sha256 if self.pretrained else None
        if checkpoint.get("encoder_sha256", ours) != ours:
            raise ConfigError(
                f"ckpt_path: this probe checkpoint was trained on another encoder (sha256 {checkpoint.get('encoder_sha256')}, not {ours})"
            )
        if not self.trains_encoder:
            checkpoint["state_dict"].update({f"encoders.{k}": v for k, v in self.encoders.state_dict().items()})
