"""Clip windows of one stored video, in the worker that loads it (the store's counterpart of
:class:`~avssl.data.decode.ClipDecoder`, with the same methods).

Frame ``k`` of an item shows from ``k / fps``, so the frame shown at a time is picked exactly as
the decoders pick it from an mp4 copy with the same fps (:func:`~avssl.data.decode.probe.displayed_index`);
audio windows are cut from the item's int16 samples by sample range and resampled as a prepared
copy's sidecar is (:func:`~avssl.data.decode.audio.finished_windows`). Items are read by random
access from litdata's chunks (one :class:`litdata.StreamingDataset` per store and process, opened
on first use). A chunk that cannot be read, frames or audio whose bytes do not match their
checksums (:func:`~avssl.data.store.meta.checksums`; only the frames a clip reads are checked) or
a frame that is not a valid JPEG raises :class:`~avssl.data.decode.DecodeError` (``corrupt``), which
the dataset counts and skips.
"""

from __future__ import annotations

import os
import zlib
from functools import lru_cache

import numpy as np
import torch
from torchvision.io import decode_jpeg

from avssl.data.decode import DecodeError, clip_frame_times, resized_shape
from avssl.data.decode.audio import finished_windows, native_window_length, pcm_float
from avssl.data.decode.probe import displayed_index
from avssl.data.encoded import resize_frames
from avssl.data.store.frames import EncodedFrames
from avssl.data.store.meta import StoreItem
from avssl.data.store.remote import chunk_client_options, storage_options


@lru_cache(maxsize=16)
def _open(root: str, pid: int):
    """litdata's reader of ``root`` in process ``pid`` (a forked worker opens its own); items are
    deserialized one at a time (``batch_decode=0``): clips are read in random order, and litdata's
    default window would deserialize a block of neighbouring videos for every one read."""
    from litdata import StreamingDataset

    chunk_client_options()
    return StreamingDataset(root, batch_decode=0, storage_options=storage_options(root))


class StoreDecoder:
    """Clip windows of item ``item`` of the store at ``root``: uint8 frames resized to
    ``short_side`` and float32 mono audio at ``sample_rate``, or (:meth:`encoded`) the frames'
    JPEG bytes for decoding on the device."""

    frame_times = staticmethod(clip_frame_times)

    def __init__(self, root: str, index: int, item: StoreItem, *, fps: int, audio_rate: int, short_side: int | None, sample_rate: int):
        self.root, self.index, self.item, self.fps, self.audio_rate, self.sample_rate = root, index, item, fps, audio_rate, sample_rate
        self.name = f"{root} item {index} ({item.source})"
        self.height, self.width = resized_shape(item.height, item.width, short_side)
        self.audio_padded = False  # some audio window ran past the end of the audio
        self.truncated = False  # stored frames cover the duration (a truncated source is never stored)
        self._data: dict | None = None

    def close(self) -> None:
        self._data = None

    def _read(self) -> dict:
        if self._data is None:
            try:
                data = _open(self.root, os.getpid())[self.index]
            except Exception as e:  # litdata raises its own and the OS's errors for a damaged chunk
                raise DecodeError(self.name, "corrupt", f"chunk not readable: {type(e).__name__}: {e}") from e
            self.use(data)
        return self._data

    def use(self, data: dict) -> None:
        """Cut the clips from ``data``, this item as litdata's streaming loader read it."""
        if len(data["offsets"]) != self.item.frames + 1 or len(data["crc"]) != self.item.frames + 1:
            raise DecodeError(self.name, "corrupt", f"the chunk's item does not hold the {self.item.frames} frames the store lists")
        self._data = data

    def _damaged(self, what: str) -> DecodeError:
        self._data = None
        return DecodeError(self.name, "corrupt", f"{what} in the chunk do not match their checksum (a damaged chunk)")

    def _frames(self, times: np.ndarray) -> list[torch.Tensor]:
        data = self._read()
        starts = np.arange(self.item.frames) / self.fps
        picked = displayed_index(times.reshape(-1), starts)
        jpeg, offsets, crc = data["jpeg"], data["offsets"], data["crc"]
        frames = {int(k): np.array(jpeg[offsets[k] : offsets[k + 1]]) for k in np.unique(picked)}
        if any(zlib.crc32(frame.data) != crc[k] for k, frame in frames.items()):  # the frames read, not the whole item
            raise self._damaged(f"frame(s) {sorted(frames)}")
        return [torch.from_numpy(frames[int(k)]) for k in picked]

    def video(self, times: np.ndarray) -> np.ndarray:
        """uint8 ``[*times.shape, H, W, 3]`` of the frames showing at ``times`` (seconds)."""
        try:
            images = decode_jpeg(self._frames(times))
        except RuntimeError as e:  # libjpeg's errors: a truncated or damaged frame
            raise DecodeError(self.name, "corrupt", f"frame not decodable: {e}") from e
        out = torch.empty((len(images), self.height, self.width, 3), dtype=torch.uint8)
        for frame, image in zip(out, images):  # frame by frame: no stack of the full-size frames
            frame.copy_(resize_frames(image, (self.height, self.width)).permute(1, 2, 0))
        return out.reshape(*times.shape, self.height, self.width, 3).numpy()

    def encoded(self, times: np.ndarray) -> EncodedFrames:
        """The JPEG bytes of the frames showing at ``times`` ``[N, T]``, decoded after the transfer
        (:func:`~avssl.data.encoded.decode_frames`)."""
        frames = self._frames(times)
        offsets = np.zeros(len(frames) + 1, np.int64)
        offsets[1:] = np.cumsum([len(f) for f in frames])
        return EncodedFrames(
            torch.cat(frames), offsets.tolist(), times.shape, [(self.item.height, self.item.width)], [(self.height, self.width)]
        )

    def audio(self, starts: np.ndarray, clip_seconds: float) -> np.ndarray:
        """float32 ``[N, round(clip_seconds * rate)]`` mono windows in [-1, 1]."""
        data = self._read()
        pcm, native = data["audio"], self.audio_rate
        if zlib.crc32(np.ascontiguousarray(pcm).data) != data["crc"][-1]:
            raise self._damaged("the audio samples")
        n_native = native_window_length(clip_seconds, native)
        clips, covered = [], []
        for start in starts:
            first = int(round(float(start) * native))
            out = np.zeros(n_native, np.float32)
            data = pcm_float(pcm[first : first + n_native])
            out[: len(data)] = data
            clips.append(out)
            covered.append(len(data))
        out, self.audio_padded = finished_windows(clips, covered, native, self.sample_rate, int(round(clip_seconds * self.sample_rate)))
        return out
