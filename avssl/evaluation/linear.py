"""Linear evaluation of a frozen encoder (SPEC 5), ``avssl test``.

``avssl test --config configs/linear.yaml --model.encoder_ckpt PRETRAIN.ckpt``:

1. the backbone is rebuilt from the checkpoint's hyper-parameters and loaded with
   ``torch.load(weights_only=True)``, frozen (eval-mode BatchNorm, no gradients);
2. readouts, each for the ``fused``, ``audio`` and ``video`` features (``modes``):

   - ``cached`` (default, fast): features of ``train_clips`` uniformly spaced clips of every
     training video, extracted once without augmentation, train the linear classifier in memory;
   - ``full`` (the paper's protocol): every epoch draws a random clip per training video with the
     domain-specific augmentations only (no temporal ones) and trains the classifier on the
     frozen encoder's features of those views;
   - ``knn``: a weighted cosine k-nearest-neighbour vote over the cached training features.

   Both linear modes: L2-normalised features (or non-affine BatchNorm, ``normalize: bn``), SGD,
   lr = ``base_lr * batch / 256`` (base 30), momentum 0.9, weight decay 0, cosine decay;
3. each test video is scored with the mean softmax over ``data.eval_clips`` clips x
   ``data.eval_crops`` spatial crops; exactly one prediction per video is kept, also under DDP
   (a distributed sampler's padding is removed); top-1 / top-5 via torchmetrics; a table is
   printed, ``results.json`` written and the metrics logged.

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
from torch import nn
from tqdm.auto import tqdm

from avssl.errors import ConfigError
from avssl.evaluation.knn import knn_predict
from avssl.evaluation.multiview import PredictionStore, mean_softmax, topk_accuracy
from avssl.methods.base import BACKBONE_KEYS
from avssl.models.backbone import TwoStreamBackbone
from avssl.utils.schedules import warmup_cosine

log = logging.getLogger(__name__)
READOUTS = ("fused", "audio", "video")
MODES = ("cached", "full", "knn")


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


class ProbeHead(nn.Module):
    """Feature normalisation + linear classifier: ``l2`` (L2-normalise each feature vector) or
    ``bn`` (non-affine BatchNorm with cumulative statistics, as MoCo v3's probe)."""

    def __init__(self, dim: int, num_classes: int, normalize: str = "l2"):
        super().__init__()
        if normalize not in ("l2", "bn"):
            raise ConfigError(f"model.normalize must be 'l2' or 'bn', got {normalize!r}")
        self.norm = nn.BatchNorm1d(dim, affine=False, momentum=None) if normalize == "bn" else None
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shape = features.shape[:-1]
        x = features.reshape(-1, features.shape[-1])
        x = self.norm(x) if self.norm is not None else F.normalize(x, dim=-1)
        return self.linear(x).view(*shape, -1)


def probe_optimizer(params, *, base_lr: float, batch_size: int, total_steps: int):
    """SGD (lr = base_lr x batch / 256, momentum 0.9, weight decay 0) + cosine decay per step."""
    opt = torch.optim.SGD(params, lr=base_lr * batch_size / 256, momentum=0.9, weight_decay=0.0)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total_steps, 0))


def train_linear(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int,
    batch_size: int,
    base_lr: float,
    seed: int,
    normalize: str = "l2",
) -> ProbeHead:
    """Train a :class:`ProbeHead` on cached features (shuffled mini-batches, cosine decay).

    Runs with gradients even inside Lightning's test loop (which is in inference mode)."""
    with torch.inference_mode(False), torch.enable_grad():
        features, labels = features.clone(), labels.clone()
        generator = torch.Generator(device="cpu").manual_seed(seed)
        torch.manual_seed(seed)
        head = ProbeHead(features.shape[1], num_classes, normalize).to(features.device).train()
        batch = min(batch_size, len(features))
        steps_per_epoch = (len(features) + batch - 1) // batch
        opt, sched = probe_optimizer(head.parameters(), base_lr=base_lr, batch_size=batch, total_steps=epochs * steps_per_epoch)
        for _ in range(epochs):
            order = torch.randperm(len(features), generator=generator).to(features.device)
            for idx in order.split(batch):
                loss = F.cross_entropy(head(features[idx]), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        return head.eval()


class LinearProbe(pl.LightningModule):
    """Linear (and kNN) evaluation of a frozen encoder, run by ``avssl test``.

    Args:
        encoder_ckpt: pre-training checkpoint; ``null`` probes a randomly initialised encoder
            (built from ``width`` / ``layers``).
        num_classes: classes (linked from the data).
        width, layers, stem_temporal_stride, fusion: the architecture when ``encoder_ckpt`` is
            null (otherwise read from the checkpoint).
        modes: readouts to run, any of ``cached`` (linear probe on cached features), ``full``
            (linear probe on freshly augmented views every epoch: the paper's protocol) and
            ``knn``; all in one run, e.g. ``[cached, full, knn]``.
        base_lr: probe learning rate per 256 samples (paper: 30).
        epochs: probe training epochs (paper: 100).
        batch_size: probe batch size of the cached mode (paper: 256); the full mode trains on
            the data module's batches (``data.batch_size``), its lr scaled to that size.
        train_clips: uniformly spaced clips per training video in the cached features (cached
            and kNN modes).
        normalize: ``l2`` (default) or ``bn`` (non-affine BatchNorm, as MoCo v3).
        knn_k: neighbours of the kNN readout.
        knn_temperature: temperature of the kNN vote weights ``exp(sim / T)``.
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
        modes: list[str] = ["cached"],  # noqa: B006 (jsonargparse needs a literal default; never mutated)
        base_lr: float = 30.0,
        epochs: int = 100,
        batch_size: int = 256,
        train_clips: int = 10,
        normalize: str = "l2",
        knn_k: int = 20,
        knn_temperature: float = 0.07,
        baselines: bool = False,
        seed: int = 0,
        output_dir: str | None = None,
    ):
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"model.num_classes: linear evaluation needs labelled data with >= 2 classes, got {num_classes}")
        if normalize not in ("l2", "bn"):
            raise ConfigError(f"model.normalize must be 'l2' or 'bn', got {normalize!r}")
        modes = list(dict.fromkeys(modes))
        if not modes or any(m not in MODES for m in modes):
            raise ConfigError(f"model.modes must be a non-empty list of {list(MODES)}, got {modes}")
        if knn_k < 1:
            raise ConfigError(f"model.knn_k must be >= 1, got {knn_k}")
        self.save_hyperparameters()
        self.modes = modes
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
        self.heads = nn.ModuleDict()  # "{encoder}/{cached|full}/{readout}" -> ProbeHead
        self.banks: dict[str, torch.Tensor] = {}  # "{encoder}/{readout}" -> cached features (kNN)
        self.bank_labels: torch.Tensor | None = None
        self.store = PredictionStore()

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoders.eval()  # frozen encoders keep BatchNorm in eval mode
        return self

    # ------------------------------------------------------------------ features
    @torch.no_grad()
    def features(self, encoder: TwoStreamBackbone, video: torch.Tensor, spec: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw per-readout features ``[B, N, D]`` of views ``[B, N, ...]``."""
        b, n = video.shape[:2]
        out = encoder.forward_streams(video.flatten(0, 1), spec.flatten(0, 1))
        return {k: v.view(b, n, -1) for k, v in out.items()}

    def _to_device(self, batch: dict) -> dict:
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    @torch.no_grad()
    def _train_features(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Cached centre-crop features (keyed ``encoder/readout``) of ``train_clips`` clips per
        training video, and their labels."""
        datamodule = self.trainer.datamodule
        dataset = datamodule.dataset("train", train=False, num_clips=self.hparams.train_clips)
        transform = datamodule.transform.to(self.device)
        feats: dict[str, list[torch.Tensor]] = {}
        labels = []
        loader = datamodule.loader(dataset, shuffle=False)
        for batch in tqdm(loader, desc="probe: caching train features", disable=not self.trainer.is_global_zero, leave=False):
            if "video" not in batch:
                continue
            views = transform.eval_views(self._to_device(batch))  # centre crop
            for enc_name, encoder in self.encoders.items():
                for readout, value in self.features(encoder, views["video"], views["spec"]).items():
                    feats.setdefault(f"{enc_name}/{readout}", []).append(value.flatten(0, 1))
            labels.append(batch["label"].to(self.device).repeat_interleave(views["video"].shape[1]))
        if not labels:
            raise ConfigError("data: no training video could be decoded for the linear probe")
        return {key: torch.cat(v) for key, v in feats.items()}, torch.cat(labels)

    def _train_full(self) -> None:
        """The paper's protocol: random clips with domain-specific augmentation every epoch."""
        hp, datamodule = self.hparams, self.trainer.datamodule
        dataset = datamodule.dataset("train", train=True, num_clips=1)
        loader = datamodule.loader(dataset, shuffle=True)
        transform = datamodule.transform.domain_only().to(self.device)
        with torch.inference_mode(False), torch.enable_grad():  # Lightning's test loop runs in inference mode
            torch.manual_seed(hp.seed)
            dims = self._readout_dims()
            heads = {
                f"{enc}/full/{r}": ProbeHead(d, hp.num_classes, hp.normalize).to(self.device)
                for enc in self.encoders
                for r, d in dims.items()
            }
            params = [p for h in heads.values() for p in h.parameters()]
            opt, sched = probe_optimizer(params, base_lr=hp.base_lr, batch_size=datamodule.batch_size, total_steps=hp.epochs * len(loader))
            for head in heads.values():
                head.train()
            bar = tqdm(range(hp.epochs), desc="probe: full mode", disable=not self.trainer.is_global_zero, leave=False)
            for epoch in bar:
                loader.sampler.set_epoch(epoch)
                for step, batch in enumerate(loader):
                    if "video" not in batch:
                        continue
                    batch = self._to_device(batch)
                    generator = torch.Generator(device=self.device).manual_seed(hash((hp.seed, epoch, step)) & 0x7FFF_FFFF_FFFF_FFFF)
                    views = transform.train_views(batch, generator)
                    labels = batch["label"].repeat_interleave(views["video"].shape[1])
                    loss = 0.0
                    for enc_name, encoder in self.encoders.items():
                        for readout, value in self.features(encoder, views["video"], views["spec"]).items():
                            loss = loss + F.cross_entropy(heads[f"{enc_name}/full/{readout}"](value.flatten(0, 1)), labels)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
        for key, head in heads.items():
            self.heads[key] = head.eval()

    def _readout_dims(self) -> dict[str, int]:
        encoder = next(iter(self.encoders.values()))
        return {"fused": encoder.out_dim, "audio": encoder.audio.out_dim, "video": encoder.video.out_dim}

    # ------------------------------------------------------------------ test loop
    def on_test_start(self) -> None:
        hp = self.hparams
        self.store = PredictionStore()
        if {"cached", "knn"} & set(self.modes):
            cached, labels = self._train_features()
            if labels.min() < 0:
                raise ConfigError("data: the train split has unlabelled videos; linear evaluation needs labels")
            for key, feats in cached.items():
                enc_name, readout = key.split("/")
                if "cached" in self.modes:
                    self.heads[f"{enc_name}/cached/{readout}"] = train_linear(
                        feats,
                        labels,
                        hp.num_classes,
                        epochs=hp.epochs,
                        batch_size=hp.batch_size,
                        base_lr=hp.base_lr,
                        seed=hp.seed,
                        normalize=hp.normalize,
                    )
                if "knn" in self.modes:
                    self.banks[key] = feats
            self.bank_labels = labels
            log.info("cached features of %d training clips", len(labels))
        if "full" in self.modes:
            self._train_full()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        if "video" not in batch:
            return
        hp = self.hparams
        probs: dict[str, torch.Tensor] = {}
        for enc_name, encoder in self.encoders.items():  # views: [B, clips * crops, ...]
            for readout, value in self.features(encoder, batch["video"], batch["spec"]).items():
                for mode in self.modes:
                    key = f"{enc_name}/{mode}/{readout}"
                    if mode == "knn":
                        p = knn_predict(
                            value.flatten(0, 1),
                            self.banks[f"{enc_name}/{readout}"],
                            self.bank_labels,
                            hp.num_classes,
                            k=hp.knn_k,
                            temperature=hp.knn_temperature,
                        )
                        probs[key] = p.view(*value.shape[:2], -1).mean(1)  # mean over the views
                    else:
                        probs[key] = mean_softmax(self.heads[key](value))
        self.store.add(batch["index"], batch["label"], probs)

    def on_test_epoch_end(self) -> None:
        index, labels, probs = self.store.collect()  # one row per video, every rank
        k = self.hparams.num_classes
        results = {key: {"top1": topk_accuracy(p, labels, 1), "top5": topk_accuracy(p, labels, 5)} for key, p in probs.items()}
        if self.hparams.baselines:
            for readout in READOUTS:
                results[f"chance/{readout}"] = {"top1": 100.0 / k, "top5": 100.0 * min(5, k) / k}
        for key, value in results.items():
            self.log_dict({f"test/{key}/{m}": v for m, v in value.items()}, sync_dist=False)
        if self.trainer.is_global_zero:
            print(format_table(results))
            self._write_json(results, num_videos=len(index))

    def _write_json(self, results: dict, *, num_videos: int) -> None:
        out_dir = Path(self.hparams.output_dir or (self.trainer.log_dir or "."))
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = self.hparams.encoder_ckpt
        payload = {
            "metrics": results,
            "num_test_videos": num_videos,
            "encoder_ckpt": ckpt,
            "encoder_sha256": file_sha256(ckpt) if ckpt else None,
            "architecture": {k: list(v) if isinstance(v, tuple) else v for k, v in self.arch.items()},
            "probe": {k: v for k, v in self.hparams.items() if k != "encoder_ckpt"},
            "world_size": self.trainer.world_size,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        path = out_dir / "results.json"
        path.write_text(json.dumps(payload, indent=2, default=str))
        log.info("wrote %s", path)
        print(f"results: {path}")


def format_table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per encoder and mode (``chance`` alone), top-1 / top-5 per readout.
    Keys are ``{encoder}/{mode}/{readout}`` or ``chance/{readout}``."""
    rows_keys = list(dict.fromkeys(key.rsplit("/", 1)[0] for key in results))
    header = "| encoder | mode | " + " | ".join(f"{r} top-1 | {r} top-5" for r in READOUTS) + " |"
    rule = "|" + "---|" * (2 + 2 * len(READOUTS))
    rows = []
    for row in rows_keys:
        encoder, _, mode = row.partition("/")
        cells = []
        for readout in READOUTS:
            m = results.get(f"{row}/{readout}", {})
            cells += [f"{m['top1']:.1f}" if "top1" in m else "-", f"{m['top5']:.1f}" if "top5" in m else "-"]
        rows.append(f"| {encoder} | {mode or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(["", "Linear evaluation (test split, %)", header, rule, *rows, ""])
