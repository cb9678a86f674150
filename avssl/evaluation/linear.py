"""Linear evaluation of a frozen encoder (SPEC 5) — cached-feature mode.

``avssl test --config configs/linear.yaml --model.encoder_ckpt PRETRAIN.ckpt``:

1. the backbone is rebuilt from the checkpoint's hyper-parameters and loaded with
   ``torch.load(weights_only=True)``, frozen (eval-mode BatchNorm, no gradients);
2. features of ``train_clips`` uniformly spaced clips of every training video are extracted once
   (deterministic views, no augmentation) and L2-normalised;
3. one linear classifier per readout (``fused``, ``audio``, ``video``) is trained on the cached
   features: SGD, lr = ``base_lr * batch / 256`` (base 30), momentum 0.9, weight decay 0,
   cosine decay, ``epochs`` epochs;
4. each test video is scored with the mean softmax over ``data.eval_clips`` clips x
   ``data.eval_crops`` spatial crops; top-1 / top-5 via torchmetrics; a table is printed and ``results.json`` written.

With ``baselines: true`` the same architecture randomly initialised is probed too, and chance
is reported, so a table shows what pre-training bought.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from avssl.errors import ConfigError
from avssl.methods.base import BACKBONE_KEYS
from avssl.models.backbone import TwoStreamBackbone
from avssl.utils.schedules import warmup_cosine

log = logging.getLogger(__name__)
READOUTS = ("fused", "audio", "video")


def load_backbone(path: str | Path) -> tuple[TwoStreamBackbone, dict]:
    """Rebuild and load the backbone of a pre-training checkpoint (weights only, no pickle code)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model.encoder_ckpt: checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a zip/pickle file, or a payload weights_only refuses
        raise ConfigError(f"model.encoder_ckpt: {path} is not a loadable weights-only checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ConfigError(f"model.encoder_ckpt: {path} is not a Lightning checkpoint (no state_dict / hyper_parameters)")
    hp = {k: ckpt["hyper_parameters"][k] for k in BACKBONE_KEYS if k in ckpt["hyper_parameters"]}
    backbone = TwoStreamBackbone(**hp)
    state = {k.removeprefix("backbone."): v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong_shape:
        raise ConfigError(
            f"model.encoder_ckpt: {path} does not match the backbone {hp}: missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)}), wrong shapes {wrong_shape[:5]}"
        )
    backbone.load_state_dict(state)
    return backbone, hp


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_linear(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, epochs: int, batch_size: int, base_lr: float, seed: int
) -> nn.Linear:
    """SGD on cached features: lr ``base_lr * batch / 256``, momentum 0.9, wd 0, cosine decay.

    Runs with gradients even inside Lightning's test loop (which is in inference mode)."""
    with torch.inference_mode(False), torch.enable_grad():
        return _train_linear(
            features.clone(), labels.clone(), num_classes, epochs=epochs, batch_size=batch_size, base_lr=base_lr, seed=seed
        )


def _train_linear(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, epochs: int, batch_size: int, base_lr: float, seed: int
) -> nn.Linear:
    generator = torch.Generator(device="cpu").manual_seed(seed)
    torch.manual_seed(seed)
    head = nn.Linear(features.shape[1], num_classes).to(features.device)
    batch = min(batch_size, len(features))
    opt = torch.optim.SGD(head.parameters(), lr=base_lr * batch / 256, momentum=0.9, weight_decay=0.0)
    steps_per_epoch = (len(features) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, epochs * steps_per_epoch, 0))
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator).to(features.device)
        for idx in order.split(batch):
            loss = F.cross_entropy(head(features[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return head


class LinearProbe(pl.LightningModule):
    """Linear evaluation (cached-feature mode) run by ``avssl test``.

    Args:
        encoder_ckpt: pre-training checkpoint; ``null`` probes a randomly initialised encoder
            (built from ``width`` / ``layers``).
        num_classes: classes (linked from the data).
        width, layers, stem_temporal_stride, fusion: the architecture when ``encoder_ckpt`` is
            null (otherwise read from the checkpoint).
        base_lr: probe learning rate per 256 samples (paper: 30).
        epochs: probe training epochs (paper: 100).
        batch_size: probe batch size (paper: 256).
        train_clips: uniformly spaced clips per training video whose features train the probe.
        normalize: ``l2`` (default) or ``bn`` (non-affine BatchNorm statistics of the train
            features, as MoCo v3).
        baselines: also probe the same architecture randomly initialised, and report chance.
        seed: seed of the random-init baseline and of probe training.
        output_dir: where ``results.json`` goes (default: the logger's directory).
    """

    def __init__(
        self,
        encoder_ckpt: str | None = None,
        *,
        num_classes: int = 0,
        width: int = 64,
        layers: tuple[int, int, int, int] = (2, 2, 2, 2),
        stem_temporal_stride: int = 1,
        fusion: str = "concat",
        base_lr: float = 30.0,
        epochs: int = 100,
        batch_size: int = 256,
        train_clips: int = 10,
        normalize: str = "l2",
        baselines: bool = False,
        seed: int = 0,
        output_dir: str | None = None,
    ):
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"model.num_classes: linear evaluation needs labelled data with >= 2 classes, got {num_classes}")
        if normalize not in ("l2", "bn"):
            raise ConfigError(f"model.normalize must be 'l2' or 'bn', got {normalize!r}")
        self.save_hyperparameters()
        self.encoders = nn.ModuleDict()
        if encoder_ckpt is not None:
            self.encoders["pretrained"], arch = load_backbone(encoder_ckpt)
        else:
            arch = dict(width=width, layers=tuple(layers), stem_temporal_stride=stem_temporal_stride, fusion=fusion)
        if encoder_ckpt is None or baselines:
            torch.manual_seed(seed)
            self.encoders["random-init"] = TwoStreamBackbone(**arch)
        self.arch = arch
        for encoder in self.encoders.values():
            encoder.requires_grad_(False)
        self.heads = nn.ModuleDict()
        self.norm_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.metrics = nn.ModuleDict(
            {
                f"{enc}/{readout}": torchmetrics.MetricCollection(
                    {
                        "top1": torchmetrics.classification.MulticlassAccuracy(num_classes, top_k=1, average="micro"),
                        "top5": torchmetrics.classification.MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
                    }
                )
                for enc in self.encoders
                for readout in READOUTS
            }
        )

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoders.eval()  # frozen encoders keep BatchNorm in eval mode
        return self

    # ------------------------------------------------------------------ features
    def _normalise(self, name: str, feats: torch.Tensor) -> torch.Tensor:
        if self.hparams.normalize == "l2":
            return F.normalize(feats, dim=-1)
        mean, std = self.norm_stats[name]
        return (feats - mean) / std

    @torch.no_grad()
    def features(self, encoder: TwoStreamBackbone, video: torch.Tensor, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw per-readout features ``[B, N, D]`` of views ``[B, N, ...]``."""
        b, n = video.shape[:2]
        out = encoder.forward_streams(video.flatten(0, 1), spec.flatten(0, 1))
        return {k: v.view(b, n, -1) for k, v in out.items()}

    @torch.no_grad()
    def _train_features(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Cached centre-crop features (keyed ``encoder/readout``) of ``train_clips`` clips per
        training video, and their labels."""
        datamodule = self.trainer.datamodule
        dataset = datamodule.dataset("train", train=False, num_clips=self.hparams.train_clips)
        feats: dict[str, list[torch.Tensor]] = {}
        labels = []
        for batch in datamodule.loader(dataset, shuffle=False):
            if "video" not in batch:
                continue
            batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            views = datamodule.transform.to(self.device).eval_views(batch)  # centre crop
            for enc_name, encoder in self.encoders.items():
                for readout, value in self.features(encoder, views["video"], views["spec"]).items():
                    feats.setdefault(f"{enc_name}/{readout}", []).append(value.flatten(0, 1))
            labels.append(batch["label"].repeat_interleave(views["video"].shape[1]))
        return {key: torch.cat(v) for key, v in feats.items()}, torch.cat(labels)

    # ------------------------------------------------------------------ test loop
    def on_test_start(self) -> None:
        hp = self.hparams
        cached, labels = self._train_features()
        if labels.min() < 0:
            raise ConfigError("data: the train split has unlabelled videos; linear evaluation needs labels")
        for key, feats in cached.items():
            if hp.normalize == "bn":
                self.norm_stats[key] = (feats.mean(0), feats.std(0) + 1e-5)
            self.heads[key] = train_linear(
                self._normalise(key, feats),
                labels,
                hp.num_classes,
                epochs=hp.epochs,
                batch_size=hp.batch_size,
                base_lr=hp.base_lr,
                seed=hp.seed,
            )
        log.info("trained %d linear probes on %d cached training clips", len(self.heads), len(labels))

    def test_step(self, batch: dict, batch_idx: int) -> None:
        if "video" not in batch:
            return
        probs: dict[str, torch.Tensor] = {}
        for enc_name, encoder in self.encoders.items():  # views: [B, clips * crops, ...]
            for readout, value in self.features(encoder, batch["video"], batch["spec"]).items():
                key = f"{enc_name}/{readout}"
                probs[key] = self.heads[key](self._normalise(key, value)).softmax(-1).mean(1)  # [B, K]
        for key, p in probs.items():
            self.metrics[key].update(p, batch["label"])  # mean softmax over the views

    def on_test_epoch_end(self) -> None:
        results = {key: {name: float(v) * 100 for name, v in metric.compute().items()} for key, metric in self.metrics.items()}
        k = self.hparams.num_classes
        if self.hparams.baselines:
            for readout in READOUTS:
                results[f"chance/{readout}"] = {"top1": 100.0 / k, "top5": 100.0 * min(5, k) / k}
        for key, value in results.items():
            self.log_dict({f"test/{key}/{m}": v for m, v in value.items()}, sync_dist=False)
        if self.trainer.is_global_zero:
            print(format_table(results))
            self._write_json(results)

    def _write_json(self, results: dict) -> None:
        out_dir = Path(self.hparams.output_dir or (self.trainer.log_dir or "."))
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = self.hparams.encoder_ckpt
        payload = {
            "metrics": results,
            "encoder_ckpt": ckpt,
            "encoder_sha256": file_sha256(ckpt) if ckpt else None,
            "architecture": {k: list(v) if isinstance(v, tuple) else v for k, v in self.arch.items()},
            "probe": {k: v for k, v in self.hparams.items() if k != "encoder_ckpt"},
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        path = out_dir / "results.json"
        path.write_text(json.dumps(payload, indent=2, default=str))
        log.info("wrote %s", path)
        print(f"results: {path}")


def format_table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per encoder, top-1 / top-5 per readout."""
    encoders = list(dict.fromkeys(key.split("/")[0] for key in results))
    header = "| encoder | " + " | ".join(f"{r} top-1 | {r} top-5" for r in READOUTS) + " |"
    rule = "|" + "---|" * (1 + 2 * len(READOUTS))
    rows = []
    for enc in encoders:
        cells = []
        for readout in READOUTS:
            m = results.get(f"{enc}/{readout}", {})
            cells += [f"{m['top1']:.1f}" if "top1" in m else "-", f"{m['top5']:.1f}" if "top5" in m else "-"]
        rows.append(f"| {enc} | " + " | ".join(cells) + " |")
    return "\n".join(["", "Linear probe (test split, %)", header, rule, *rows, ""])
