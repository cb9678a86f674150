"""SSLMethod: the shared base of every pre-training method.

It owns the two-stream backbone, the views it trains on (built from the data module's view
settings when the fit is set up, applied on the device after each transfer:
:mod:`avssl.augment.views`), the optional cross-modal term, the optimiser (SGD,
``lr = base_lr * global_batch / 256``, weight decay off for biases and normalisation parameters),
the warm-up + cosine schedule (a pure function of the step,
:func:`avssl.utils.schedules.warmup_cosine`), the online linear probe and the logging. A method
subclass adds its heads and implements :meth:`ssl_loss`.

Batch layout in the step (after :class:`avssl.augment.pipeline.AVTransform`): ``video`` float
``[B, N, 3, T, H, W]``, ``spec`` float ``[B, N, 1, F, S]``, ``label`` ``[B]``.
"""

from __future__ import annotations

import logging
from itertools import combinations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from avssl.augment.pipeline import AVTransform
from avssl.augment.views import ViewSpec, batch_generator
from avssl.data.batch import ViewsAfterTransfer
from avssl.errors import ConfigError
from avssl.losses import cross_modal_nce, info_nce
from avssl.methods.probe import OnlineLinearProbe
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.models.heads import mlp
from avssl.models.init import load_vit_weights
from avssl.reliability.finite import FiniteGuard, logging_step, refuse_nonfinite
from avssl.spec import CHECKPOINT_KEY as INPUT_KEY
from avssl.spec import DATA_COUNTS_KEY, METHOD_KEY
from avssl.utils.dist import gather_with_grad, world_size
from avssl.utils.plain import plain
from avssl.utils.schedules import warmup_cosine

log = logging.getLogger(__name__)

SYNC_BN_ON_CPU = (
    "trainer.sync_batchnorm: synchronised BatchNorm needs GPUs (torch's SyncBatchNorm does not run on CPU / gloo); set it to false on CPU"
)


STREAM_HEADS = ("mlp", "linear", "none")


def stream_projector(kind: str, in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """The projector of the per-stream / cross-modal terms (see ``SSLMethod``'s ``stream_head``)."""
    if kind not in STREAM_HEADS:
        raise ConfigError(f"model.stream_head must be one of {', '.join(STREAM_HEADS)}, got {kind!r}")
    if kind == "mlp":
        return mlp(in_dim, hidden_dim, out_dim)
    return nn.Linear(in_dim, out_dim) if kind == "linear" else nn.Identity()


class SSLMethod(ViewsAfterTransfer, pl.LightningModule):
    """Base of the pre-training methods.

    Args:
        backbone: the two-stream backbone's architecture (default: ResNet-18 for both streams);
            stored in checkpoints as a plain dict, from which evaluations rebuild the encoder.
        num_classes: classes of the online probe (linked from the data; 0 disables it).
        base_lr: learning rate per 256 samples of global batch (paper: 0.1).
        momentum: SGD momentum.
        weight_decay: L2 penalty, not applied to biases and normalisation layers.
        warmup_epochs: linear warm-up length, then cosine decay to 0.
        probe_lr: learning rate of the online probe (its own parameter group, no weight decay;
            it follows the same warm-up + cosine factor).
        cross_modal_weight: weight lambda of an extra audio-video InfoNCE term between the audio
            and the video embedding of each clip (AVID / CAV-MAE style; negatives from the global
            batch). 0 is the paper's setup. Beyond the paper: without it audio alone can solve the
            clip-matching task and the video encoder gets little pressure (docs/guides/methods.md).
        stream_weight: weight of an extra per-stream InfoNCE term: the audio embeddings of the N
            views of a video are positives (negatives: the other videos' audio), and likewise the
            video embeddings. 0 is the paper's setup. Beyond the paper: it makes each encoder learn
            what the views share on its own, where one stream could otherwise solve the fused task
            alone (docs/studies/demo.md).
        stream_dim: output width of the audio and the video projector that both terms use.
        stream_hidden_dim: their hidden width.
        stream_head: the projectors: ``mlp`` (2 layers with BatchNorm, the default), ``linear``, or
            ``none`` (the terms compare the encoders' pooled features directly; both encoders have
            the same width; docs/studies/demo.md compares them).
        stream_temperature: temperature of both terms' InfoNCE.
        compile: ``torch.compile`` the video and audio encoders in place (state-dict keys
            unchanged) when the fit starts; heads, losses and augmentation stay eager
            (docs/guides/gpu.md).
        channels_last: run the video encoder in ``channels_last_3d`` and the audio encoder in
            ``channels_last`` memory format, inputs included (faster convolutions on recent GPUs).
        backbone_init: a local image MAE / ViT or CAV-MAE checkpoint file (``.pth`` / ``.safetensors``)
            whose weights initialise the ViT encoders when a fit starts (a resumed fit then restores
            its checkpoint's weights over them); what was loaded is logged
            (:func:`avssl.models.init.load_vit_weights`).
    """

    def __init__(
        self,
        *,
        backbone: BackboneConfig = BackboneConfig(),
        num_classes: int = 0,
        base_lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        warmup_epochs: float = 10,
        probe_lr: float = 0.1,
        cross_modal_weight: float = 0.0,
        stream_weight: float = 0.0,
        stream_dim: int = 128,
        stream_hidden_dim: int = 512,
        stream_head: str = "mlp",
        stream_temperature: float = 0.1,
        compile: bool = False,
        channels_last: bool = False,
        backbone_init: str | None = None,
    ):
        super().__init__()
        backbone = BackboneConfig(**backbone) if isinstance(backbone, dict) else backbone  # from a checkpoint's hparams
        self.save_hyperparameters()
        for name, weight in (("cross_modal_weight", cross_modal_weight), ("stream_weight", stream_weight)):
            if weight < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {weight}")
        self.backbone = TwoStreamBackbone(backbone)
        self.probe = OnlineLinearProbe(self.backbone.out_dim, num_classes) if num_classes > 0 else None
        self.finite = FiniteGuard(
            "training loss", "resume from the last checkpoint (e.g. with a lower model.base_lr or without mixed precision)"
        )
        self.view_spec: ViewSpec | None = None  # the data's view settings and their transform, set up by setup()
        self.views: AVTransform | None = None
        self.stream_projectors = None  # audio / video projectors of the per-stream and cross-modal terms
        if cross_modal_weight > 0 or stream_weight > 0:
            dims = {"video": self.backbone.video.out_dim, "audio": self.backbone.audio.out_dim}
            self.stream_projectors = nn.ModuleDict(
                {k: stream_projector(stream_head, d, stream_hidden_dim, stream_dim) for k, d in dims.items()}
            )

    # ------------------------------------------------------------------ views
    def setup(self, stage: str) -> None:
        """Build the views from the settings of the data module the trainer runs on."""
        datamodule = self.trainer.datamodule
        if not isinstance(getattr(datamodule, "views", None), ViewSpec):
            raise ConfigError(
                f"{type(self).__name__} takes its clips and their view settings from an AVDataModule: "
                "trainer.fit(model, datamodule=AVDataModule(...))"
            )
        self.view_spec = datamodule.views
        self.views = self.view_spec.transform()  # no parameters, no checkpoint keys
        if stage == "fit" and self.hparams.backbone_init:  # Lightning restores a resumed fit's weights after setup
            report = load_vit_weights(self.backbone, self.hparams.backbone_init)
            log.info("model.backbone_init: %s", report.summary())

    def make_views(self, batch: dict) -> dict:
        """Training batches: the random pre-training views; the others: deterministic views."""
        device = batch["label"].device
        views = self.views.to(device)
        if self.trainer.training:
            return views.train_views(batch, batch_generator(self.trainer, self.view_spec.seed, device))
        return views.eval_views(batch, self.view_spec.eval_positions)

    def configure_model(self) -> None:
        """Lightning calls this once before the fit: the memory format and compilation options."""
        if self.hparams.channels_last:
            self.backbone.use_channels_last()
        if self.hparams.compile and not getattr(self, "_compiled", False):
            for encoder in (self.backbone.video, self.backbone.audio):
                encoder.compile()  # in place: the modules (and the checkpoint's keys) stay the same
            self._compiled = True

    # ------------------------------------------------------------------ hooks for subclasses
    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``features`` ``[B, N, D]`` of the N views -> (loss, embeddings ``[B, N, P]`` for the
        collapse monitor)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ steps
    def encode_streams(self, video: torch.Tensor, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """``video``/``audio``/``fused`` features ``[B, N, D*]`` of views ``[B, N, ...]`` (one
        backbone pass over the B*N clips)."""
        b, n = video.shape[:2]
        streams = self.backbone.forward_streams(video.flatten(0, 1), spec.flatten(0, 1))
        return {k: v.view(b, n, -1) for k, v in streams.items()}

    def encode(self, video: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Fused features ``[B, N, D]`` of views ``[B, N, ...]``."""
        return self.encode_streams(video, spec)["fused"]

    def stream_losses(self, streams: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The auxiliary terms whose weight is > 0, embeddings gathered (with gradient) from every
        process: ``xmodal`` (audio-video InfoNCE of every view) and ``stream`` (InfoNCE between the
        views of each stream, the mean over the two streams)."""
        z = {
            k: gather_with_grad(proj(streams[k].flatten(0, 1)).view(*streams[k].shape[:2], -1))
            for k, proj in self.stream_projectors.items()
        }
        hp, n = self.hparams, streams["fused"].shape[1]
        out = {}
        if hp.cross_modal_weight > 0:
            out["xmodal"] = sum(cross_modal_nce(z["audio"][:, i], z["video"][:, i], hp.stream_temperature) for i in range(n)) / n
        if hp.stream_weight > 0:
            pairs = list(combinations(range(n), 2))
            out["stream"] = sum(info_nce(zs[:, i], zs[:, j], hp.stream_temperature) for zs in z.values() for i, j in pairs) / (
                2 * len(pairs)
            )
        return out

    def log_data_counters(self, batch: dict) -> None:
        """Per-epoch sums of the batch's data counters (failed decodes, silent / padded /
        non-finite audio, short videos), summed over ranks: ``data/failed`` etc."""
        counters = {f"data/{k[4:]}": v.float() for k, v in batch.items() if k.startswith("num_") and torch.is_tensor(v)}
        if counters:
            self.log_dict(counters, reduce_fx="sum", on_step=False, on_epoch=True, sync_dist=True, batch_size=1)

    def objective(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of a batch of views ``{"video": [B, N, ...], "spec": [B, N, ...]}``:
        ``(loss, embeddings [B, *, P] for the collapse monitor, fused features [B, N, D] for the
        online probe, logs)``. Here: :meth:`ssl_loss` on the fused features plus the weighted
        auxiliary terms; a method whose objective is not a function of the unmasked features
        (masked modelling) overrides this instead."""
        streams = self.encode_streams(batch["video"], batch["spec"])
        features = streams["fused"]  # [B, N, D]
        loss, z = self.ssl_loss(features, batch)
        logs = {"train/ssl_loss": loss.detach()}
        if self.stream_projectors is not None:
            for name, term in self.stream_losses(streams).items():
                loss = loss + self.hparams[f"{'cross_modal' if name == 'xmodal' else 'stream'}_weight"] * term
                logs[f"train/{name}_loss"] = term.detach()
        return loss, z, features, logs

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        self.log_data_counters(batch)
        if "video" not in batch:
            return None  # every sample failed to decode; counted by the data module
        loss, z, features, logs = self.objective(batch)
        logs["train/z_std"] = F.normalize(z.detach(), dim=-1).std(dim=(0, 1)).mean()
        if self.probe is not None:
            probe_loss, probe_logs = self.probe(features[:, 0], batch["label"])
            loss = loss + probe_loss
            logs.update({"train/online_loss": probe_logs["loss"], "train/online_top1": probe_logs["top1"]})
        # not prog_bar: Lightning reads progress-bar metrics back to the host every step
        # (LoggingStepProgressBar shows them on the logging steps instead)
        self.log_dict(logs, batch_size=features.shape[0], sync_dist=False)
        self.finite.record(loss, self.global_step, batch.get("video_id", []))
        if logging_step(self._trainer):  # the host reads the flag when Lightning reads the metrics
            self.finite.check()
        return loss

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A resumed run refuses NaN / inf weights, naming the tensors (training on would only spread them)."""
        refuse_nonfinite(checkpoint.get("state_dict", {}), "ckpt_path")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Hyper-parameters in plain types (the backbone's settings as a dict): checkpoints load
        with ``weights_only=True``; the data's :class:`~avssl.spec.InputSpec` and the counts of its
        datasets beside them."""
        checkpoint["hyper_parameters"] = plain(dict(checkpoint["hyper_parameters"]))
        checkpoint[METHOD_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "input_spec"):
            checkpoint[INPUT_KEY] = datamodule.input_spec.to_dict()  # what an evaluation must feed the encoder
            checkpoint[DATA_COUNTS_KEY] = plain(getattr(datamodule, "counts", dict)())  # what it trained on (avssl export's card)

    def on_train_epoch_end(self) -> None:
        self.finite.check()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if "video" not in batch or self.probe is None:
            return
        features = self.encode(batch["video"], batch["spec"])
        _, logs = self.probe(features.mean(dim=1), batch["label"])
        self.log("val/online_top1", logs["top1"], prog_bar=True, batch_size=features.shape[0], sync_dist=True)

    def predict_step(self, batch: dict, batch_idx: int) -> dict | None:
        """Fused features of each video, averaged over its evaluation views (``avssl predict``)."""
        if "video" not in batch:
            return None
        features = self.encode(batch["video"], batch["spec"]).mean(dim=1)  # [B, D]
        return {"index": batch["index"], "video_id": batch["video_id"], "features": features}

    # ------------------------------------------------------------------ checks
    def on_fit_start(self) -> None:
        # Lightning converts BatchNorm under DDP (the CLI also refuses the flag on one CPU device).
        if self.device.type == "cpu" and any(isinstance(m, nn.SyncBatchNorm) for m in self.modules()):
            raise ConfigError(SYNC_BN_ON_CPU)
        streams = getattr(self.trainer.datamodule, "streams", ("video", "audio"))
        if len(streams) < 2:
            raise ConfigError(
                f"data: pre-training needs audio and video; this data gives {'+'.join(streams)} only "
                f"(data.layout {self.trainer.datamodule.layout}); single-stream benchmarks are for avssl transfer / avssl test"
            )

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        hp = self.hparams
        datamodule = self.trainer.datamodule
        global_batch = datamodule.batch_size * world_size() * self.trainer.accumulate_grad_batches
        lr = hp.base_lr * global_batch / 256
        probe_params = set(self.probe.parameters()) if self.probe is not None else set()
        decay, no_decay = [], []
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                if param in probe_params or not param.requires_grad:  # momentum targets are not trained
                    continue
                is_norm = isinstance(module, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm)
                (no_decay if is_norm or name == "bias" else decay).append(param)
        groups = [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if probe_params:
            groups.append({"params": list(self.probe.parameters()), "weight_decay": 0.0, "lr": hp.probe_lr})
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=hp.momentum)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = max(1, self.trainer.max_epochs or 1)
        warmup = int(round(hp.warmup_epochs * total / epochs))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total, warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
