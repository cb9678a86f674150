"""Features of a frozen pre-trained encoder for your own videos, in a few lines.

    import avssl

    encoder = avssl.load_encoder("runs/simclr/version_0/checkpoints/last.ckpt")
    features = avssl.extract_features(encoder, ["a.mp4", "b.mkv"])  # or datamodule=..., split="test"
    features.fused  # [2, D]: the mean over each video's clips; .audio and .video per stream

The videos are decoded and turned into clips exactly as the encoder saw them in pre-training:
:func:`encoder_datamodule` rebuilds the data module from the settings saved in the checkpoint
(frames per clip, clip length, audio rate, spectrogram, pixel normalisation, decode resolution),
and each clip is viewed deterministically (the evaluation's centre crop, no augmentation). Videos
that cannot be decoded are left out and named in :attr:`Features.skipped`, never replaced by
zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avssl.data.batch import decoded_on_device
from avssl.data.datamodule import AVDataModule
from avssl.data.layouts import VideoRecord
from avssl.errors import ConfigError
from avssl.evaluation.encoder import PretrainedEncoder, load_encoder
from avssl.evaluation.results import READOUTS


@dataclass
class Features:
    """Per-video features (rows in the order of :attr:`video_ids`).

    Attributes:
        fused: ``[N, D]`` features of the fused backbone output (audio and video concatenated);
            ``None`` for single-stream data.
        audio: ``[N, Da]`` audio-encoder features (``None`` for video-only data).
        video: ``[N, Dv]`` video-encoder features (``None`` for audio-only data).
        video_ids: the video of each row (the file stem for a list of files).
        labels: ``[N]`` class labels (-1 where the data has none).
        skipped: videos left out (path -> reason: unreadable at indexing, or a failed decode).
    """

    fused: torch.Tensor | None
    audio: torch.Tensor | None
    video: torch.Tensor | None
    video_ids: list[str]
    labels: torch.Tensor
    skipped: dict[str, str] = field(default_factory=dict)

    def streams(self) -> dict[str, torch.Tensor]:
        """The readouts present: ``{"fused" | "audio" | "video": [N, D]}``."""
        return {k: v for k, v in ((k, getattr(self, k)) for k in READOUTS) if v is not None}


def encoder_datamodule(encoder: PretrainedEncoder, **settings: Any) -> AVDataModule:
    """The :class:`~avssl.data.datamodule.AVDataModule` the encoder was pre-trained with (its
    saved settings), with ``settings`` (constructor arguments, e.g. ``root``, ``batch_size``,
    ``num_workers``) replacing the saved values."""
    from jsonargparse import ArgumentParser

    if not encoder.data:
        raise ConfigError(f"{encoder.path} carries no data settings (an older checkpoint): build the AVDataModule yourself")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(AVDataModule, "data")
    # where a store's frames decode is this machine's choice, not the pre-training machine's
    saved = {k: v for k, v in encoder.data.items() if k != "decode_on"}
    config = parser.parse_object({"data": {**saved, **settings}})
    return parser.instantiate(config).data


@torch.no_grad()
def extract_features(
    encoder: PretrainedEncoder | str | Path,
    videos: Sequence[str | Path] | None = None,
    *,
    datamodule: AVDataModule | None = None,
    split: str = "test",
    clips: int | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    allow_missing_audio: bool | None = None,
) -> Features:
    """Features of ``videos`` (a list of files) or of a ``datamodule``'s ``split``.

    Args:
        encoder: a :class:`~avssl.evaluation.encoder.PretrainedEncoder` or a pre-training
            checkpoint path (loaded with :func:`~avssl.evaluation.encoder.load_encoder`).
        videos: video files; their input settings come from the checkpoint.
        datamodule: instead of ``videos``: the data module whose ``split`` to encode (e.g. the
            one :func:`encoder_datamodule` returns with ``root=...``).
        split: ``train`` / ``val`` / ``test`` with ``datamodule``.
        clips: uniformly spaced clips per video (default: the data module's ``eval_clips``); a
            video's feature is the mean over its clips.
        batch_size: videos per forward pass.
        num_workers: DataLoader worker processes.
        device: where the encoder runs (default: CUDA when available, else CPU).
        allow_missing_audio: with ``videos``: keep those without an audio stream, with silent
            audio (``data.allow_missing_audio`` of the data module; a ``datamodule`` has its own);
            ``None``: the encoder's pre-training setting. Skipped videos are named.
    """
    if (videos is None) == (datamodule is None):
        raise ConfigError("extract_features: give either videos (a list of files) or a datamodule")
    if isinstance(encoder, str | Path):
        encoder = load_encoder(encoder, field_name="encoder")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if datamodule is not None and allow_missing_audio is not None:
        raise ConfigError("extract_features: allow_missing_audio is the datamodule's own setting when a datamodule is given")
    audio = {} if allow_missing_audio is None else {"allow_missing_audio": allow_missing_audio}
    if datamodule is None:
        datamodule = encoder_datamodule(encoder, batch_size=batch_size, num_workers=num_workers, **audio)
        records = [VideoRecord(str(v), -1, Path(v).stem, "test") for v in videos]
        missing = [r.path for r in records if not Path(r.path).is_file()]
        if missing:
            raise ConfigError(f"extract_features: no such video file(s): {missing[:5]}")
    else:
        records = datamodule.records(split)
        if not records:
            raise ConfigError(f"extract_features: the data at {datamodule.data_root} has no {split} split (give split=...)")
    dataset = datamodule.clip_dataset(records, train=False, num_clips=clips or datamodule.eval_clips)
    skipped = dict(dataset.skipped_files)
    backbone = encoder.backbone.to(device).eval()
    transform = datamodule.views.transform().to(device)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in READOUTS}
    rows, labels = [], []
    for batch in datamodule.loader(dataset, shuffle=False):
        batch = decoded_on_device({k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()})
        if batch is None:  # every video of the batch failed to decode (named below)
            continue
        rows += batch["index"].tolist()
        views = transform.eval_views(batch, [0.5])
        for key, value in backbone.encode_views(views).items():
            parts[key].append(value.mean(1).cpu())  # a video's feature: the mean over its clips
        labels.append(batch["label"].cpu())
    failed = set(range(len(dataset))) - set(rows)  # a failed decode is named, never zero-filled
    skipped.update({dataset.records[i].path: "decode_failed" for i in sorted(failed)})
    ids = [dataset.records[i].video_id for i in rows]
    if not ids:
        raise ConfigError(f"extract_features: no video could be decoded ({skipped})")
    joined = {k: torch.cat(v) if v else None for k, v in parts.items()}  # each stream's features, concatenated once
    broken = [k for k, v in joined.items() if v is not None and not bool(torch.isfinite(v).all())]
    if broken:
        raise ConfigError(f"extract_features: the {'/'.join(broken)} features of {encoder.path} are not finite (NaN / inf)")
    return Features(
        **joined,
        video_ids=ids,
        labels=torch.cat(labels).long(),
        skipped=dict(sorted(skipped.items())),
    )
