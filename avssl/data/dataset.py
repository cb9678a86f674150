"""The index of a dataset split, clip sampling and decoding: :class:`AVClipDataset`.

A sample is laid out as :mod:`avssl.data.batch` describes.

Bad input (never a crash, never hidden): a file that cannot be probed (missing, zero-byte,
truncated headers, no video stream, no audio stream unless ``allow_missing_audio``) is left out of
the index, counted by reason in :attr:`AVClipDataset.skipped` and listed in ``skipped_files``. A
file that probes but fails to decode at run time drops that sample; in training the next video
takes its place (up to ``retries`` times), so the batch keeps its size and DDP ranks stay in step;
every failure is counted in the batch's ``num_failed``. Documented repairs, each counted per batch:
no audio stream with ``allow_missing_audio`` -> silence (``num_silent_audio``); audio ending before
the clip -> zero padding (``num_padded_audio``); NaN / inf samples -> 0 (``num_nonfinite_audio``);
a video shorter than a clip -> starts at 0 and repeats its last frame (``num_short_video``); a
truncated file whose frames end before its header's duration -> windows past the last frame repeat
it (``num_truncated_video``).

Randomness: the clip starts of item ``i`` in epoch ``e`` come from
``numpy.random.default_rng([seed, e, i])``, so they do not depend on the worker count or on
the order in which workers run. :class:`~avssl.data.loaders.EpochSampler` yields ``(epoch, index)`` keys; Lightning
calls its ``set_epoch`` at every epoch start.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from avssl.data.decode import DEFAULT_VIDEO_BACKEND, VIDEO_BACKENDS, ClipDecoder, DecodeError, MediaInfo, check_torchcodec
from avssl.data.encoded import ENCODED_KEY
from avssl.data.layouts import STREAMS, VideoRecord
from avssl.data.prepared import probe_file
from avssl.data.sampling import sample_train_starts, uniform_starts
from avssl.data.store.meta import StoreMeta
from avssl.data.store.read import StoreDecoder
from avssl.errors import ConfigError

log = logging.getLogger(__name__)
DECODE_ON = ("worker", "device")


@dataclass(frozen=True)
class ClipSpec:
    """What one decoded clip is, shared by every dataset of a data module (validated once).

    Args:
        clip_seconds: clip length (the paper's 1.28 s).
        num_frames: frames per clip ``T``, spread evenly over the clip.
        short_side: frames are resized in the decoder so their short side has this many pixels
            (aspect ratio kept, nothing cropped).
        sample_rate: audio rate after resampling (Hz).
        video_backend: ``"pyav"`` (default), ``"decord"`` (PyAV for the files decord gets wrong
            or cannot read) or ``"torchcodec"`` (``pip install 'avssl[torchcodec]'`` and FFmpeg's
            shared libraries); see :mod:`avssl.data.decode`.
        streams: the streams to decode, ``("video", "audio")`` (default), ``("video",)`` or
            ``("audio",)``: a sample holds only those (a single-stream dataset never carries a
            zero-filled stand-in for the other); audio-only data may be audio files.
        allow_missing_audio: keep videos without an audio stream, with silent audio (counted);
            ``False`` skips them.
        decode_on: where the frames are decoded: ``worker`` (in the loader's workers) or
            ``device`` (the workers return them encoded, a store's JPEG frames or a media file's
            bytes for the ``torchcodec`` backend; the batch is decoded after the transfer, on its
            device: :mod:`avssl.data.encoded`).
    """

    clip_seconds: float = 1.28
    num_frames: int = 8
    short_side: int = 128
    sample_rate: int = 44100
    video_backend: str = DEFAULT_VIDEO_BACKEND
    streams: tuple[str, ...] = STREAMS
    allow_missing_audio: bool = False
    decode_on: str = "worker"

    def __post_init__(self) -> None:
        if self.decode_on not in DECODE_ON:
            raise ConfigError(f"data.decode_on must be one of {', '.join(DECODE_ON)}, got {self.decode_on!r}")
        streams = tuple(self.streams)
        if not streams or any(s not in STREAMS for s in streams) or len(set(streams)) != len(streams):
            raise ConfigError(f"data.streams must be a non-empty subset of {list(STREAMS)}, got {list(streams)}")
        object.__setattr__(self, "streams", tuple(s for s in STREAMS if s in streams))  # batch order
        if self.video_backend not in VIDEO_BACKENDS:
            raise ConfigError(f"data.video_backend must be one of {', '.join(VIDEO_BACKENDS)}, got {self.video_backend!r}")
        if self.video_backend == "torchcodec" and "video" in streams:
            check_torchcodec()  # installed, and FFmpeg's libraries load: said before any decoding
        for name, low in (("num_frames", 1), ("sample_rate", 1), ("short_side", 2)):
            if getattr(self, name) < low:
                raise ConfigError(f"data.{name} must be >= {low}, got {getattr(self, name)}")
        if not self.clip_seconds > 0:
            raise ConfigError(f"data.clip_seconds must be > 0, got {self.clip_seconds}")

    @property
    def num_samples(self) -> int:
        """Audio samples per clip."""
        return int(round(self.clip_seconds * self.sample_rate))


def store_info(record: VideoRecord) -> MediaInfo:
    """What a stored video is, from its store's description (nothing is read from the chunks)."""
    meta = StoreMeta.cached(record.store)
    item = meta.items[record.item]
    return MediaInfo(
        duration=item.duration,
        width=item.width,
        height=item.height,
        fps=float(meta.fps),
        audio_rate=meta.audio_rate if item.has_audio else 0,
        codec="jpeg",
    )


def open_decoder(record: VideoRecord, info: MediaInfo, clip: ClipSpec) -> ClipDecoder | StoreDecoder:
    """The decoder of one record: its store's items, or its media file with the clip's backend."""
    if record.store:
        meta = StoreMeta.cached(record.store)
        item = meta.items[record.item]
        return StoreDecoder(
            record.store,
            record.item,
            item,
            fps=meta.fps,
            audio_rate=meta.audio_rate,
            short_side=clip.short_side,
            sample_rate=clip.sample_rate,
        )
    return ClipDecoder(record.path, info, short_side=clip.short_side, sample_rate=clip.sample_rate, backend=clip.video_backend)


class AVClipDataset(Dataset):
    """Clips of the videos in ``records``.

    Args:
        records: the videos (see :mod:`avssl.data.layouts`).
        clip: what a clip is (length, frames, resolution, audio rate, backend, streams).
        train: ``True`` samples ``num_clips`` positives with the CVRL gap distribution;
            ``False`` takes ``num_clips`` uniformly spaced clips (deterministic).
        num_clips: clips per video ``N``.
        gap_power: ``p`` of the CVRL gap density; ``None`` for uniform gaps.
        min_gap: least gap (seconds) between the first and the last positive's starts.
        seed: base seed of clip sampling.
        retries: training only: how many following videos may stand in for one that fails to
            decode, keeping the batch size fixed.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        clip: ClipSpec = ClipSpec(),
        *,
        train: bool,
        num_clips: int = 2,
        gap_power: float | None = 1.0,
        min_gap: float = 0.0,
        seed: int = 0,
        retries: int = 3,
    ):
        if num_clips < 1:
            raise ConfigError(f"num_clips must be >= 1, got {num_clips}")
        self.clip, self.streams = clip, clip.streams
        self.train, self.num_clips, self.gap_power, self.min_gap, self.seed, self.retries = (
            train,
            num_clips,
            gap_power,
            min_gap,
            seed,
            retries,
        )
        self.in_flight_dir = tempfile.mkdtemp(prefix="avssl-decoding-")  # what each worker is decoding now
        weakref.finalize(self, shutil.rmtree, self.in_flight_dir, True)  # main process only: copies in workers do not own it
        self.skipped: Counter[str] = Counter()
        self.skipped_files: list[tuple[str, str]] = []
        self.records: list[VideoRecord] = []
        self.infos: list[MediaInfo] = []
        for record in records:
            try:
                info = store_info(record) if record.store else probe_file(record.path, video="video" in self.streams)
                if "audio" in self.streams and not info.has_audio and not clip.allow_missing_audio:
                    raise DecodeError(record.path, "no_audio_stream")
            except DecodeError as e:
                self._skip(record.path, e.reason)
                continue
            self.records.append(record)
            self.infos.append(info)
        if self.skipped:
            named = ", ".join(f"{path} ({reason})" for path, reason in self.skipped_files[:10])
            more = f" and {len(self.skipped_files) - 10} more" if len(self.skipped_files) > 10 else ""
            log.warning("skipped %d of %d videos: %s: %s%s", sum(self.skipped.values()), len(records), dict(self.skipped), named, more)

    def _skip(self, path: str, reason: str) -> None:
        self.skipped[reason] += 1
        self.skipped_files.append((path, reason))

    def __len__(self) -> int:
        return len(self.records)

    def duration(self, index: int) -> float:
        """Seconds of sample ``index``: its record's window of the file."""
        record, info = self.records[index], self.infos[index]
        available = max(0.0, info.duration - record.offset)
        return available if record.length is None else min(available, record.length)

    def clip_starts(self, epoch: int, index: int) -> np.ndarray:
        """Clip starts in file time (the record's offset added)."""
        duration, offset = self.duration(index), self.records[index].offset
        if not self.train:
            return offset + uniform_starts(duration, self.clip.clip_seconds, self.num_clips)
        rng = np.random.default_rng([self.seed, epoch, index])
        return offset + sample_train_starts(rng, duration, self.clip.clip_seconds, self.num_clips, self.gap_power, self.min_gap)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        return self.sample(epoch, index)

    def sample(self, epoch: int, index: int, item: dict | None = None) -> dict[str, Any] | None:
        """The clips of video ``index`` in ``epoch`` (``None`` if it fails to decode; in training
        the following videos stand in first). ``item``: its store item, already read by litdata's
        streaming loader (:mod:`avssl.data.streaming`)."""
        attempts = 1 + (self.retries if self.train else 0)
        for attempt in range(min(attempts, len(self))):
            sample = self._load(epoch, (index + attempt) % len(self), item if attempt == 0 else None)
            if sample is not None:
                sample["num_failed"] = attempt  # videos that failed before this one stood in
                return sample
        return None

    def _load(self, epoch: int, index: int, item: dict | None = None) -> dict[str, Any] | None:
        record, info = self.records[index], self.infos[index]
        starts = self.clip_starts(epoch, index)
        clip = self.clip
        decoder = open_decoder(record, info, clip)
        self._mark_in_flight(record.path)
        sample: dict[str, Any] = {}
        try:
            if item is not None:
                decoder.use(item)
            if "video" in self.streams:
                times = decoder.frame_times(starts, clip.clip_seconds, clip.num_frames)
                if clip.decode_on == "device":  # decoded after the transfer (avssl.data.encoded)
                    sample[ENCODED_KEY] = decoder.encoded(times)
                else:
                    sample["video"] = torch.from_numpy(decoder.video(times))
            if "audio" in self.streams and info.has_audio:
                sample["audio"] = decoder.audio(starts, clip.clip_seconds)
            elif "audio" in self.streams:  # allow_missing_audio: silence
                sample["audio"] = np.zeros((len(starts), clip.num_samples), np.float32)
        except DecodeError as e:
            # A file that probed fine but does not decode: the sample is dropped (or replaced in
            # training) and counted in the batch, so the run reports it.
            log.warning("skipping %s", e)
            return None
        finally:
            decoder.close()
            self._mark_in_flight(None)
        nonfinite = False
        if "audio" in sample:
            audio = sample["audio"]
            nonfinite = not np.isfinite(audio).all()
            sample["audio"] = torch.from_numpy(np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0) if nonfinite else audio)
        return {
            **sample,
            "label": record.label,
            "index": index,
            "start": torch.from_numpy(starts),
            "video_id": record.video_id,
            "silent_audio": "audio" in self.streams and not info.has_audio,
            "padded_audio": decoder.audio_padded,
            "nonfinite_audio": nonfinite,
            "short_video": self.duration(index) < clip.clip_seconds,
            "truncated_video": decoder.truncated,
        }

    def _mark_in_flight(self, path: str | None) -> None:
        """Workers note the file they are decoding (one small file per worker process), so a
        DataLoader timeout can name it (:func:`in_flight_files`)."""
        if get_worker_info() is None:
            return
        marker = os.path.join(self.in_flight_dir, str(os.getpid()))
        if path is None:
            if os.path.exists(marker):
                os.remove(marker)
            return
        with open(marker, "w") as f:
            f.write(path)

    def in_flight_files(self) -> list[str]:
        """Files the workers are decoding right now."""
        out = []
        for name in os.listdir(self.in_flight_dir) if os.path.isdir(self.in_flight_dir) else []:
            try:
                with open(os.path.join(self.in_flight_dir, name)) as f:
                    out.append(f.read())
            except OSError:  # the worker finished meanwhile
                continue
        return sorted(out)
