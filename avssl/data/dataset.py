"""Index + clip sampling + decoding. Bad files are skipped, counted by reason and reported.

Sample layout (the one layout used everywhere, see also :mod:`avssl.data`):

================  ===================================  =====================================
key               sample                               batch (after ``collate``)
================  ===================================  =====================================
``video``         uint8 ``[N, T, H, W, 3]``             uint8 ``[B, N, T, H, W, 3]``
``audio``         float32 ``[N, S]``                    float32 ``[B, N, S]``
``label``         int (-1 unknown)                      int64 ``[B]``
``index``         int (row in the index)                int64 ``[B]``
``start``         float64 ``[N]`` clip starts (s)       float64 ``[B, N]``
``video_id``      str                                   list of ``B`` str
================  ===================================  =====================================

``N`` is the number of clips per video (2 positives in pre-training, ``eval_clips`` in
evaluation), ``T`` frames per clip, ``S = round(clip_seconds * sample_rate)``.

Randomness: the clip starts of item ``i`` in epoch ``e`` come from
``numpy.random.default_rng([seed, e, i])``, so they do not depend on the worker count or on
the order in which workers run. :class:`EpochSampler` yields ``(epoch, index)`` keys; Lightning
calls its ``set_epoch`` at every epoch start.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from avssl.data.decode import ClipDecoder, DecodeError, MediaInfo, probe
from avssl.data.folder import VideoRecord
from avssl.data.sampling import sample_train_starts, uniform_starts

log = logging.getLogger(__name__)


class AVClipDataset(Dataset):
    """Clips of the videos in ``records``.

    Args:
        records: the videos (see :mod:`avssl.data.folder`).
        train: ``True`` samples ``num_clips`` positives with the CVRL gap distribution;
            ``False`` takes ``num_clips`` uniformly spaced clips (deterministic).
        clip_seconds: clip length (the paper's 1.28 s).
        num_frames: frames per clip ``T``, spread evenly over the clip.
        num_clips: clips per video ``N``.
        short_side: frames are resized in the decoder so their short side has this many pixels.
        aspect: the long side is centre-cropped (or padded) to ``round(short_side * aspect)``
            so frames of different videos stack; 1.0 gives square frames.
        sample_rate: audio rate after resampling (Hz).
        gap_power: ``p`` of the CVRL gap density; ``None`` for uniform gaps.
        seed: base seed of clip sampling.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        *,
        train: bool,
        clip_seconds: float = 1.28,
        num_frames: int = 8,
        num_clips: int = 2,
        short_side: int = 128,
        aspect: float = 1.0,
        sample_rate: int = 44100,
        gap_power: float | None = 1.0,
        seed: int = 0,
    ):
        if num_frames < 1 or num_clips < 1:
            raise ValueError(f"num_frames and num_clips must be >= 1, got {num_frames}, {num_clips}")
        self.train, self.clip_seconds, self.num_frames, self.num_clips = train, clip_seconds, num_frames, num_clips
        self.short_side, self.sample_rate, self.gap_power, self.seed = short_side, sample_rate, gap_power, seed
        self.width = int(round(short_side * aspect))
        self.skipped: Counter[str] = Counter()
        self.skipped_files: list[tuple[str, str]] = []
        self.records: list[VideoRecord] = []
        self.infos: list[MediaInfo] = []
        for record in records:
            try:
                info = probe(record.path)
                if not info.has_audio:
                    raise DecodeError(record.path, "no_audio_stream")
            except DecodeError as e:
                self._skip(record.path, e.reason)
                continue
            self.records.append(record)
            self.infos.append(info)
        if self.skipped:
            log.warning("skipped %d of %d videos: %s", sum(self.skipped.values()), len(records), dict(self.skipped))

    def _skip(self, path: str, reason: str) -> None:
        self.skipped[reason] += 1
        self.skipped_files.append((path, reason))

    def __len__(self) -> int:
        return len(self.records)

    def clip_starts(self, epoch: int, index: int) -> np.ndarray:
        info = self.infos[index]
        if not self.train:
            return uniform_starts(info.duration, self.clip_seconds, self.num_clips)
        rng = np.random.default_rng([self.seed, epoch, index])
        return sample_train_starts(rng, info.duration, self.clip_seconds, self.num_clips, self.gap_power)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        record, info = self.records[index], self.infos[index]
        starts = self.clip_starts(epoch, index)
        decoder = ClipDecoder(record.path, info, short_side=self.short_side, sample_rate=self.sample_rate)
        try:
            video = decoder.video(decoder.frame_times(starts, self.clip_seconds, self.num_frames))
            audio = decoder.audio(starts, self.clip_seconds)
        except DecodeError as e:
            # Runtime failures (a file that probed fine but does not decode) drop the sample;
            # `collate` counts them in the batch so the run reports them.
            log.warning("skipping %s", e)
            return None
        return {
            "video": torch.from_numpy(self._fit_width(video)),
            "audio": torch.from_numpy(audio),
            "label": record.label,
            "index": index,
            "start": torch.from_numpy(starts),
            "video_id": record.video_id,
        }

    def _fit_width(self, video: np.ndarray) -> np.ndarray:
        """Centre-crop or zero-pad the long (width) side to ``self.width`` pixels."""
        height, width = video.shape[-3], video.shape[-2]
        if height > width:  # portrait: crop / pad the height to the short side instead
            top = (height - self.short_side) // 2
            video = video[..., top : top + self.short_side, :, :]
            width = video.shape[-2]
        if width >= self.width:
            left = (width - self.width) // 2
            return np.ascontiguousarray(video[..., left : left + self.width, :])
        pad = [(0, 0)] * video.ndim
        pad[-2] = ((self.width - width) // 2, self.width - width - (self.width - width) // 2)
        return np.pad(video, pad)


def collate(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack samples into the batch layout; ``num_failed`` counts samples that failed to decode."""
    ok = [s for s in samples if s is not None]
    if not ok:
        return {"num_failed": torch.tensor(len(samples))}
    batch: dict[str, Any] = {
        "video": torch.stack([s["video"] for s in ok]),
        "audio": torch.stack([s["audio"] for s in ok]),
        "label": torch.tensor([s["label"] for s in ok], dtype=torch.long),
        "index": torch.tensor([s["index"] for s in ok], dtype=torch.long),
        "start": torch.stack([s["start"] for s in ok]),
        "video_id": [s["video_id"] for s in ok],
        "num_failed": torch.tensor(len(samples) - len(ok)),
    }
    return batch


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys, shuffled per epoch from ``(seed, epoch)`` when ``shuffle``."""

    def __init__(self, length: int, *, shuffle: bool, seed: int = 0):
        self.length, self.shuffle, self.seed, self.epoch = length, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = range(self.length)
        return iter((self.epoch, i) for i in order)
