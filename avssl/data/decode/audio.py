"""Audio windows: float32 mono in [-1, 1] at the configured rate, from the file's audio stream
(PyAV) or from a prepared copy's WAV sidecar (by sample range: no decoding, no seek inaccuracy).

PyAV seeks to each window, decodes only the packets covering it, down-mixes to mono, and
``torchaudio.functional.resample`` brings it to the configured rate; every window is padded or
trimmed to exactly ``round(clip_seconds * rate)`` samples. (decord's ``AudioReader`` decodes the
whole track on construction, several times slower for two short clips.) Samples of every format
(unsigned 8-bit, signed 16/32/64-bit, float, double; planar or interleaved) are scaled to
[-1, 1] (unsigned 8-bit around 128); float samples above full scale are clipped after resampling,
the same policy prepared copies apply when they store 16-bit PCM, so a raw file and its prepared
copy give the same input.
"""

from __future__ import annotations

import math
import wave
from fractions import Fraction

import av
import numpy as np
import torch
import torchaudio.functional as AF

from avssl.data.decode.probe import DecodeError, MediaInfo, SharedContainer

AUDIO_PREROLL = 0.1  # seconds decoded and discarded before each audio window


def audio_samples(frame) -> np.ndarray:
    """float32 mono samples of a decoded audio ``frame``, every sample format scaled to [-1, 1]:
    unsigned 8-bit around 128, signed integers by their full scale (2^(bits-1)), floats as they are;
    planar or interleaved channels averaged."""
    data = frame.to_ndarray()
    if data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.signedinteger):
        data = data.astype(np.float32) / -float(np.iinfo(data.dtype).min)
    else:
        data = data.astype(np.float32)
    return data.mean(0) if frame.format.is_planar else data.reshape(-1, len(frame.layout.channels)).mean(1)


class AudioReader:
    """Audio windows of one file, from the sample's shared container (or its sidecar)."""

    def __init__(self, path: str, info: MediaInfo, sample_rate: int, container: SharedContainer):
        self.path, self.info, self.sample_rate, self.container = path, info, sample_rate, container
        self.padded = False  # some window ran past the end of the audio

    def windows(self, starts: np.ndarray, clip_seconds: float) -> np.ndarray:
        """float32 ``[N, round(clip_seconds * rate)]`` mono windows in [-1, 1] (clipped after
        resampling); zeros where the track has no samples."""
        n_out = int(round(clip_seconds * self.sample_rate))
        if not self.info.has_audio:
            raise DecodeError(self.path, "no_audio_stream")
        native = self.info.audio_rate
        n_native = native_window_length(clip_seconds, native)
        if self.info.sidecar:
            clips, covered = zip(*(self._sidecar_window(float(s), n_native, native) for s in starts))
        else:
            clips, covered = self._stream_windows(starts, n_native, native)
        out, self.padded = finished_windows(clips, covered, native, self.sample_rate, n_out)
        return out

    def _sidecar_window(self, start: float, n_samples: int, rate: int) -> tuple[np.ndarray, int]:
        """``n_samples`` from the prepared mono PCM16 WAV by sample range, and how many it had."""
        out = np.zeros(n_samples, np.float32)
        try:
            with wave.open(self.info.sidecar) as w:
                first = int(round(start * rate))
                if first < w.getnframes():
                    w.setpos(first)
                    data = pcm_float(np.frombuffer(w.readframes(n_samples), dtype="<i2"))
                    out[: len(data)] = data
                    return out, len(data)
        except (OSError, EOFError, wave.Error) as e:
            raise DecodeError(self.info.sidecar, "corrupt", str(e)) from e
        return out, 0

    def _stream_windows(self, starts: np.ndarray, n_samples: int, rate: int) -> tuple[list[np.ndarray], list[int]]:
        """``n_samples`` mono samples at the native rate from each start (zeros where the track has
        none), and for each the index one past the last sample the track covered."""
        outs, covers = [], []
        container = self.container.get()
        try:
            stream = container.streams.audio[0]
            for start in starts:
                out, covered = stream_window(container, stream, float(start), n_samples, rate, self.info.start)
                outs.append(out)
                covers.append(covered)
        except av.FFmpegError as e:
            raise DecodeError(self.path, "corrupt", str(e)) from e
        return outs, covers


def pcm_float(pcm: np.ndarray) -> np.ndarray:
    """float32 samples of 16-bit PCM (a prepared copy's or a store's audio)."""
    return pcm.astype(np.float32) / 32767


def finished_windows(clips, covered, native: int, sample_rate: int, n_out: int) -> tuple[np.ndarray, bool]:
    """Native-rate windows ``clips`` (each covering its first ``covered`` samples) resampled to
    ``sample_rate``, cut to ``n_out`` samples and clipped to [-1, 1] (NaN stays NaN: the dataset
    counts and zeroes it); and whether some window was zero-padded because the track ended before
    it did (1 ms slack for codec framing)."""
    n_native = len(clips[0])
    padded = any(c < n_native - 1 - native // 1000 for c in covered)
    samples = torch.from_numpy(np.stack(clips))
    if native != sample_rate:
        samples = AF.resample(samples, native, sample_rate)
    n = min(n_out, samples.shape[1])
    out = np.zeros((len(clips), n_out), np.float32)
    out[:, :n] = samples[:, :n].numpy()
    return np.clip(out, -1.0, 1.0, out=out), padded


def native_window_length(clip_seconds: float, native: int) -> int:
    """Samples read at the native rate for one window: enough for the resampler's output."""
    return int(math.ceil(clip_seconds * native)) + 1


def stream_window(container, stream, start: float, n_samples: int, rate: int, origin: float) -> tuple[np.ndarray, int]:
    """``n_samples`` from timeline time ``start`` (file time ``start + origin``), and how many the
    track covered."""
    out = np.zeros(n_samples, np.float32)
    covered = 0
    tb = stream.time_base
    # Pre-roll: start decoding AUDIO_PREROLL s early and discard it, so the window never begins
    # on a cold decoder (AAC frames overlap their neighbours: the first frame after a seek is off).
    container.seek(max(0, int(Fraction(max(0.0, start + origin - AUDIO_PREROLL)) / tb) - 1), stream=stream, backward=True)
    first = int(round(start * rate))
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        frame_first = int(round((float(frame.pts * tb) - origin) * rate))
        data = audio_samples(frame)
        lo, hi = max(first, frame_first), min(first + n_samples, frame_first + len(data))
        if hi > lo:
            out[lo - first : hi - first] = data[lo - frame_first : hi - frame_first]
            covered = hi - first
        if frame_first + len(data) >= first + n_samples:
            break
    return out, covered
