"""What every evaluation of an encoder shares: the module that classifies the data with it.

:class:`EncoderEvaluation` is the base of the linear probe (:mod:`avssl.evaluation.probe`, a
frozen encoder) and of fine-tuning (:mod:`avssl.evaluation.finetune`, the encoder trained too),
run by :func:`avssl.workflows.linear.linear_evaluation` (``avssl test``): ``Trainer.fit`` trains
the classifiers, ``Trainer.test`` scores every test video once, so progress bars, logging,
checkpoints, resume and DDP come from Lightning.

One module holds every classifier of a run: one per encoder (the pre-trained one, and with
``baselines`` the same architecture randomly initialised) and readout (``fused``, ``audio``,
``video`` features, or the one stream of single-stream data). Their losses are summed; their
parameters are disjoint, so each trains exactly as it would alone.

Views (made here, on the device, from the data's view settings: :mod:`avssl.augment.views`):
training batches get the probe's views (paper section 3.4: the domain-specific augmentations only
— crop, flip, colour, pitch shift, noise; no temporal ones — with the crops resized to the test
crops' size, so the classifier trains on inputs of the resolution it is tested on); feature
extraction one centre crop per clip; test batches each of the ``data.eval_clips`` clips x
``data.eval_crops`` crops (the paper's 10 x 3), and a video's prediction is the mean softmax over
them (:func:`~avssl.evaluation.multiview.mean_softmax`); exactly one prediction per video is kept,
also under DDP.
"""

from __future__ import annotations

import dataclasses

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from avssl.augment.pipeline import AVTransform
from avssl.augment.views import ViewSpec, batch_generator
from avssl.data.batch import ViewsAfterTransfer, decoded
from avssl.errors import ConfigError
from avssl.evaluation.encoder import PretrainedEncoder, load_encoder
from avssl.evaluation.multiview import PredictionStore, mean_softmax
from avssl.evaluation.results import READOUTS, evaluation_results, format_table, write_results
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.reliability.finite import FiniteGuard, NonFiniteLossError, logging_step
from avssl.utils.plain import plain

RANDOM_INIT = "random-init"


def probe_views(spec: ViewSpec) -> AVTransform:
    """The probe's training views (paper section 3.4): the domain-specific augmentations of
    ``spec`` without the temporal ones, with crops of the test crops' size."""
    augment = spec.augment
    return AVTransform(
        spec.sample_rate, dataclasses.replace(augment, temporal=[], crop_size=augment.eval_crop_size or augment.crop_size), spec.spectrogram
    )


class EncoderEvaluation(ViewsAfterTransfer, pl.LightningModule):
    """Classifiers on an encoder's features, trained and tested on labelled data.

    Subclasses set :attr:`mode` (how their results are named) and :attr:`trains_encoder`, and
    implement :meth:`make_head` and ``configure_optimizers``.

    Args:
        encoder_ckpt: pre-training checkpoint (required unless ``random_init``). The evaluation
            takes the checkpoint's input settings (frames, clip length, audio rate, spectrogram,
            normalisation) and dataset (see :mod:`avssl.evaluation.encoder`).
        num_classes: classes (linked from the data).
        baselines: also evaluate the same architecture randomly initialised (frozen for the probe,
            trained from scratch for fine-tuning), and report chance.
        seed: seed of the random-init encoder, of the classifiers' initialisation and of the
            training views' draws.
        output_dir: where ``results.json`` goes (default: the logger's directory).
        override_input_settings: evaluate with explicitly set input settings that differ from the
            encoder's pre-training ones (logged) instead of refusing them.
        backbone: the architecture of the randomly initialised encoder when ``encoder_ckpt`` is
            null; with a checkpoint the architecture is the checkpoint's (setting it is an error).
        random_init: evaluate a randomly initialised encoder (built from ``backbone``) instead of a
            pre-trained one: without a checkpoint this must be set, so a forgotten
            ``encoder_ckpt`` is an error rather than a plausible table of random features.
    """

    mode: str  # names the results (keys, table, results.json): a probe mode or "finetune"
    trains_encoder: bool

    def __init__(
        self,
        encoder_ckpt: str | None = None,
        *,
        num_classes: int = 0,
        baselines: bool = False,
        seed: int = 0,
        output_dir: str | None = None,
        override_input_settings: bool = False,
        backbone: BackboneConfig | None = None,
        random_init: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()  # with the subclass's arguments
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
        if isinstance(backbone, dict):  # from a probe checkpoint's hparams
            backbone = BackboneConfig(**backbone)
        if encoder_ckpt is not None and backbone is not None:
            raise ConfigError("model.backbone: the architecture comes from model.encoder_ckpt; leave model.backbone unset")
        self.pretrained: PretrainedEncoder | None = load_encoder(encoder_ckpt) if encoder_ckpt is not None else None
        self.architecture = self.pretrained.architecture if self.pretrained else (backbone or BackboneConfig())
        self.encoders = nn.ModuleDict()
        if self.pretrained is not None:
            self.encoders["pretrained"] = self.pretrained.backbone
        if self.pretrained is None or baselines:
            torch.manual_seed(seed)
            self.encoders[RANDOM_INIT] = TwoStreamBackbone(self.architecture).requires_grad_(False)
        self.view_spec: ViewSpec | None = None  # set by attach(): the data's view settings and the transforms built from them
        self.views: AVTransform | None = None
        self.train_views: AVTransform | None = None
        self.batch_size = 256
        self.store = PredictionStore()
        self.evaluation_data: dict = {}
        self.readouts: tuple[str, ...] = READOUTS  # narrowed by attach() for single-stream data
        self.dataset: dict = {}  # the evaluation data's layout and split, set by attach()
        self.num_train_videos = 0  # set by the workflow (decodable training videos)
        self.skipped_files: dict[str, dict[str, str]] = {}  # set by the workflow: {dataset: {file: reason}}
        self.finite = FiniteGuard("probe loss", "the encoder's features or the evaluation's learning rate are not usable")

    def build_heads(self) -> None:
        """One classifier (:meth:`make_head`) per encoder and readout, initialised from ``seed``."""
        torch.manual_seed(self.hparams.seed)
        some = next(iter(self.encoders.values()))
        dims = {"fused": some.out_dim, "audio": some.audio.out_dim, "video": some.video.out_dim}
        self.heads = nn.ModuleDict({f"{enc}/{r}": self.make_head(dims[r]) for enc in self.encoders for r in READOUTS})

    def make_head(self, dim: int) -> nn.Module:
        """The classifier of one readout of ``dim`` features: ``[..., dim]`` -> logits ``[..., K]``."""
        raise NotImplementedError

    @staticmethod
    def readouts_for(streams: tuple[str, ...]) -> tuple[str, ...]:
        """The readouts evaluated on data with ``streams``: every one for audio-visual data, the
        stream's own for single-stream data."""
        return READOUTS if len(streams) == 2 else tuple(streams)

    # ------------------------------------------------------------------ wiring
    def attach(self, datamodule) -> None:
        """Take the data: its input settings must be the encoder's (``avssl test`` sets them from
        the checkpoint; a conflict is a :class:`ConfigError` unless ``override_input_settings``);
        the views are built from its view settings, the readouts from its streams."""
        if self.pretrained is not None and self.pretrained.input is not None:
            self.pretrained.input.check(datamodule.input_spec, override=self.hparams.override_input_settings, source=self.pretrained.path)
        self.readouts = self.readouts_for(datamodule.streams)
        for key in [k for k in self.heads if k.split("/")[1] not in self.readouts]:
            del self.heads[key]
        self.view_spec = datamodule.views
        self.views, self.train_views = self.view_spec.transform(), probe_views(self.view_spec)
        self.batch_size = datamodule.batch_size  # per device, as in pre-training
        self.evaluation_data = dict(datamodule.hparams)
        self.dataset = {"layout": datamodule.layout, "split": datamodule.official_split}

    @property
    def estimates_baseline_statistics(self) -> bool:
        """Whether a frozen random-init baseline needs its batch-norm statistics from the data."""
        return False

    @property
    def uses_cached_features(self) -> bool:
        """Whether the classifiers learn from features extracted once (else from augmented clips)."""
        return False

    def on_fit_start(self) -> None:
        if self.trainer.datamodule is not None:  # its training loader gives pre-training clips
            raise ConfigError(
                f"{type(self).__name__} trains through avssl.evaluation.linear_evaluation(trainer, probe, datamodule), not with a datamodule"
            )

    # ------------------------------------------------------------------ views and features
    def make_views(self, batch: dict) -> dict:
        """Training batches: the probe's views (one random clip per video); feature extraction:
        one centre crop per clip; test: every clip x ``data.eval_crops`` crops. (Batches of cached
        features hold no clips and pass as they are.)"""
        trainer, device = self.trainer, batch["label"].device
        if trainer.training:
            generator = batch_generator(trainer, self.hparams.seed, device)
            return self.train_views.to(device).train_views(batch, generator)
        positions = (0.5,) if trainer.predicting else self.view_spec.eval_positions
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
        if "features" in batch:  # cached features: {"features": {key: [B, D]}, "label": [B]}
            features, labels = {k: v[:, None] for k, v in batch["features"].items()}, batch["label"]
        elif decoded(batch):  # one augmented clip per video
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

    # ------------------------------------------------------------------ test
    def on_test_start(self) -> None:
        self.store = PredictionStore()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        if not decoded(batch):
            return
        probs = {}
        for key, value in self.features(batch).items():  # [B, clips * crops, D]
            encoder, readout = key.split("/")
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
        """A checkpoint holds the classifiers, not frozen encoders (rebuilt from ``encoder_ckpt``
        and ``seed``), plus the encoder's hash so a resume cannot mix encoders."""
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
