"""Decoding of clip windows: uint8 frames and float32 mono audio, split by stream kind.

* :mod:`~avssl.data.decode.probe`: what a file is (:func:`probe`, :class:`MediaInfo`), the one
  presentation timeline and display geometry;
* :mod:`~avssl.data.decode.video_decord` and :mod:`~avssl.data.decode.video_pyav`: the two video
  backends;
* :mod:`~avssl.data.decode.audio`: audio windows from the stream or a sidecar.

:class:`ClipDecoder` puts them together for one file. Video, ``backend="pyav"`` (the default,
:data:`DEFAULT_VIDEO_BACKEND`): PyAV (FFmpeg's decoders, maintained), right on every file of the
fidelity tests and, on one thread, on par with decord 0.6.0 on raw files and faster on prepared
copies and small files (``benchmarks/loader.py``, ``benchmarks/step.py``; numbers in
docs/guides/data.md). ``backend="decord"``: decord (last released in 2021), with PyAV for the
files it gets wrong or cannot read: those decord cannot open (e.g. AV1) or decodes to a wrong
shape, the codecs of :data:`PYAV_ONLY_CODECS` (HEVC: decord seeks to wrong frames in open-GOP
streams), and files whose timeline does not start at 0 (streams that start late: decord was
measured up to 3 frames off on such a file). ``backend="torchcodec"``: the PyTorch project's
FFmpeg decoder (an optional extra; :mod:`~avssl.data.decode.video_torchcodec`), which can also
decode on the batch's device after the transfer (``data.decode_on: device``, NVDEC on CUDA). Every
backend decodes on one thread in the workers (they provide the parallelism); PyAV decodes what
another cannot.

Truncated files: a file whose frames end before the duration its header claims (a cut download)
decodes the frames it has; a window reaching more than :data:`TRUNCATION_SLACK` seconds past the
last decodable frame sets :attr:`ClipDecoder.truncated`, which the dataset counts.

The public entry points are :func:`probe` (metadata, read in the main process when the index is
built) and :class:`ClipDecoder` (opened lazily inside each DataLoader worker).
"""

from __future__ import annotations

import logging

import numpy as np

from avssl.data.decode.audio import AudioReader, audio_samples
from avssl.data.decode.probe import (
    TIME_TOLERANCE,
    TRUNCATION_SLACK,
    DecodeError,
    MediaInfo,
    SharedContainer,
    clip_frame_times,
    frame_time,
    probe,
    resized_shape,
    single_threaded,
)
from avssl.data.decode.video_decord import DecordVideo
from avssl.data.decode.video_pyav import PyAVVideo, display_rgb
from avssl.data.decode.video_torchcodec import EncodedVideo, TorchCodecVideo, check_torchcodec
from avssl.errors import ConfigError

__all__ = [
    "DEFAULT_VIDEO_BACKEND",
    "PYAV_ONLY_CODECS",
    "TIME_TOLERANCE",
    "TRUNCATION_SLACK",
    "VIDEO_BACKENDS",
    "ClipDecoder",
    "DecodeError",
    "MediaInfo",
    "audio_samples",
    "check_torchcodec",
    "clip_frame_times",
    "display_rgb",
    "frame_time",
    "probe",
    "resized_shape",
    "single_threaded",
]

log = logging.getLogger(__name__)
VIDEO_BACKENDS = ("pyav", "decord", "torchcodec")
DEFAULT_VIDEO_BACKEND = "pyav"
# decord 0.6.0 returns frames several positions off after seeking in open-GOP HEVC (x265's default):
# such files are decoded by PyAV under either backend (tests/data/test_fidelity.py).
PYAV_ONLY_CODECS = ("hevc",)


def decord_reads(info: MediaInfo) -> bool:
    """Whether the ``decord`` backend hands ``info``'s file to decord: not the codecs of
    :data:`PYAV_ONLY_CODECS`, nor a file whose timeline starts after 0 (streams that start late,
    e.g. both at 1.0 s: decord's frames were up to 0.12 s off the ones a player shows)."""
    return info.codec not in PYAV_ONLY_CODECS and info.start <= TIME_TOLERANCE


class ClipDecoder:
    """Decodes clip windows of one file. Create it inside the worker that uses it."""

    frame_times = staticmethod(clip_frame_times)

    def __init__(self, path: str, info: MediaInfo, *, short_side: int | None, sample_rate: int, backend: str = DEFAULT_VIDEO_BACKEND):
        if backend not in VIDEO_BACKENDS:
            raise ValueError(f"video backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
        self.path, self.info, self.backend = path, info, backend
        self.height, self.width = resized_shape(info.height, info.width, short_side)
        self._container = SharedContainer(path)
        self._pyav = PyAVVideo(path, info, self.height, self.width, self._container)
        self._other: DecordVideo | TorchCodecVideo | None = None  # the backend chosen, when not PyAV
        if backend == "decord" and decord_reads(info):
            self._other = DecordVideo(path, info, self.height, self.width)
        elif backend == "torchcodec":
            self._other = TorchCodecVideo(path, info, self.height, self.width)
        self._audio = AudioReader(path, info, sample_rate, self._container)

    @property
    def truncated(self) -> bool:
        """Some window ran past the last decodable frame."""
        return self._pyav.truncated or (self._other is not None and self._other.truncated)

    @property
    def audio_padded(self) -> bool:
        """Some audio window ran past the end of the audio."""
        return self._audio.padded

    def __enter__(self) -> ClipDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder handles (also released when the object is collected)."""
        self._container.close()
        if self._other is not None:
            self._other.close()

    def video(self, times: np.ndarray) -> np.ndarray:
        """uint8 ``[*times.shape, H, W, 3]`` of the frames showing at ``times`` (seconds)."""
        frames = None
        if self._other is not None:
            try:
                frames = self._other.frames(times)
            except DecodeError:
                raise
            except Exception as e:  # decord raises its own error types for files it cannot parse
                log.debug("%s failed on %s (%s); using PyAV", self.backend, self.path, e)
        if frames is None:
            frames = self._pyav.frames(times)
        return frames.reshape(*times.shape, self.height, self.width, 3)

    def encoded(self, times: np.ndarray) -> EncodedVideo:
        """The file's bytes with the times ``[N, T]`` its clips show, decoded after the transfer on
        the batch's device (``data.decode_on: device``; the ``torchcodec`` backend only)."""
        if self.backend != "torchcodec":
            raise ConfigError(f"data.decode_on: device decodes media files with torchcodec, not the {self.backend} backend")
        return EncodedVideo.read(self.path, times, self.info, (self.height, self.width))

    def audio(self, starts: np.ndarray, clip_seconds: float) -> np.ndarray:
        """float32 ``[N, round(clip_seconds * rate)]`` mono windows in [-1, 1] (clipped after
        resampling); zeros where the track has no samples."""
        return self._audio.windows(starts, clip_seconds)
