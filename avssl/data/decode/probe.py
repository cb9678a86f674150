"""What a media file is, read without decoding it: :class:`MediaInfo` and :func:`probe`, and the
one presentation timeline every decoder uses.

One presentation timeline: frame and sample times are the container's time stamps (stream start
times and edit lists applied by the demuxer) minus the container's start time, so the audio and
the video of a file whose streams start late, or at different times, stay in sync, and time 0 is
the start of the file's earliest stream (:func:`frame_time`). Frame times come from the time
stamps, not from ``index / fps``, so variable-frame-rate files give the right frames.

Display geometry: frames are shown as a player shows them. The sample aspect ratio stretches the
width (a 2:1 SAR shows 32 x 32 coded pixels as 64 x 32), then a rotation in the display matrix (90,
180 or 270 degrees, as phones write) turns the frame; both apply before the short-side resize.
:func:`probe` reports that display size.

A file's audio may be in a sidecar WAV (mono PCM16, as ``avssl prepare`` writes it): the caller
names it (:func:`probe`'s ``sidecar``, found by the index in the copy's report,
:mod:`avssl.data.prepared`); the decoders know nothing of any dataset or report.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass

import av
import numpy as np

# Time stamps are floats from ``pts * time_base``: a time within this many seconds of a frame's
# start counts as on that frame (a time that falls exactly on a frame boundary stays on the frame
# that starts there).
TIME_TOLERANCE = 1e-4
TRUNCATION_SLACK = 0.25  # seconds past the last frame's display interval before a window counts as truncated


class DecodeError(RuntimeError):
    """A file that cannot be decoded; ``reason`` is a short machine-readable category."""

    def __init__(self, path: str, reason: str, detail: str = ""):
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class MediaInfo:
    """Container metadata needed to plan clips (read once, without decoding)."""

    duration: float
    width: int
    height: int
    fps: float
    audio_rate: int  # 0 when the file has no audio stream
    sidecar: str | None = None  # prepared copies: the mono WAV holding the audio
    start: float = 0.0  # file time (s) of timeline 0: the container's start, the earliest stream's
    video_start: float = 0.0  # file time (s) of the first video frame
    rotation: int = 0  # counter-clockwise display rotation in degrees (0, 90, 180, 270)
    sample_aspect: float = 1.0  # width of a coded pixel relative to its height
    codec: str = ""  # the video codec's FFmpeg name

    @property
    def has_audio(self) -> bool:
        return self.audio_rate > 0


def probe(path: str, *, video: bool = True, sidecar: str | None = None) -> MediaInfo:
    """Read stream metadata with PyAV (headers and the first video frame, for its display
    rotation). ``width`` / ``height`` are the display size: sample aspect ratio and rotation
    applied. ``video=False`` reads audio-only files too (a WAV, or a video whose frames are not
    wanted): the frame fields are then 0 and the duration is the audio's. ``sidecar``: a WAV
    holding the file's audio (a prepared copy's), whose rate is then reported. Raises
    :class:`DecodeError`."""
    try:
        with av.open(path) as container:
            if not video:
                return _probe_audio(path, container)
            if not container.streams.video:
                raise DecodeError(path, "no_video_stream")
            vs = container.streams.video[0]
            single_threaded(container)
            streams = [vs, *container.streams.audio[:1]]
            starts = [float(st.start_time * st.time_base) for st in streams if st.start_time is not None and st.time_base]
            video_start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
            start = float(container.start_time / av.time_base) if container.start_time is not None else min(starts, default=0.0)
            seconds = _stream_seconds(vs)
            duration = video_start - start + seconds if seconds else (container.duration or 0) / av.time_base
            audio_rate = container.streams.audio[0].sample_rate if container.streams.audio else 0
            fps = float(vs.average_rate or vs.guessed_rate or 0)
            rotation = _first_frame_rotation(container, vs)
            sar = float(vs.sample_aspect_ratio or 1) or 1.0
            width, height = vs.codec_context.width, vs.codec_context.height
            width = max(1, round(width * sar))
            if rotation in (90, 270):
                width, height = height, width
            if sidecar is not None:
                with wave.open(sidecar) as w:
                    audio_rate = w.getframerate()
            info = MediaInfo(
                float(duration), width, height, fps, audio_rate, sidecar, start, video_start, rotation, sar, vs.codec_context.name
            )
    except DecodeError:
        raise
    except FileNotFoundError as e:
        reason = "dangling_link" if os.path.islink(path) else "missing"  # a link whose target is gone
        raise DecodeError(path, reason, str(e)) from e
    except (av.FFmpegError, OSError, ValueError, EOFError, wave.Error) as e:
        raise DecodeError(path, "unreadable", str(e)) from e
    if info.duration <= 0 or info.width <= 0:
        raise DecodeError(path, "unreadable", "no duration or frame size in the container")
    return info


def _probe_audio(path: str, container) -> MediaInfo:
    """:func:`probe` of the audio stream alone."""
    if not container.streams.audio:
        raise DecodeError(path, "no_audio_stream")
    stream = container.streams.audio[0]
    start = float(container.start_time / av.time_base) if container.start_time is not None else 0.0
    seconds = _stream_seconds(stream) or (container.duration or 0) / av.time_base
    if seconds <= 0:
        raise DecodeError(path, "unreadable", "no duration in the container")
    return MediaInfo(float(seconds), 0, 0, 0.0, stream.sample_rate, None, start, start)


def _first_frame_rotation(container, stream) -> int:
    """Counter-clockwise display rotation of the video (0 / 90 / 180 / 270): PyAV exposes the
    display matrix on decoded frames only."""
    for frame in container.decode(stream):
        return int(round(frame.rotation / 90)) % 4 * 90
    return 0


def _stream_seconds(stream) -> float:
    if stream.duration is None or stream.time_base is None:
        return 0.0
    return float(stream.duration * stream.time_base)


def resized_shape(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(H, W) after scaling the short side to ``short_side`` (even sizes, aspect kept); (0, 0)
    for audio-only media."""
    if not short_side or min(height, width) == 0:
        return height, width
    scale = short_side / min(height, width)
    return max(2, 2 * round(height * scale / 2)), max(2, 2 * round(width * scale / 2))


def single_threaded(container) -> None:
    """Decode the video and audio streams of a PyAV ``container`` on one thread. Parallelism comes
    from the loader's worker processes, and a decoder left to the garbage collector in a forked
    child would wait forever on FFmpeg threads that exist only in its parent."""
    for stream in (*container.streams.video, *container.streams.audio):
        stream.codec_context.thread_count = 1


def frame_time(frame, time_base: float, origin: float) -> float:
    """The timeline time (seconds) of a decoded PyAV ``frame`` of a stream with ``time_base``,
    in a file whose timeline starts at file time ``origin`` (:attr:`MediaInfo.start`)."""
    return (float(frame.pts * time_base) if frame.pts is not None else float(frame.time or 0)) - origin


def clip_frame_times(starts: np.ndarray, clip_seconds: float, num_frames: int) -> np.ndarray:
    """Times ``[N, T]`` of T frames spread evenly over each clip ``[start, start + clip)``."""
    offsets = (np.arange(num_frames) + 0.5) * clip_seconds / num_frames
    return starts[:, None] + offsets[None, :]


def displayed_index(times: np.ndarray, frame_starts: np.ndarray) -> np.ndarray:
    """Index of the frame displayed at each time: the last frame starting at or before it (within
    :data:`TIME_TOLERANCE`)."""
    idx = np.searchsorted(frame_starts, times + TIME_TOLERANCE, side="right") - 1
    return np.clip(idx, 0, len(frame_starts) - 1)


def past_last_frame(times: np.ndarray, last_start: float, info: MediaInfo) -> bool:
    """Whether a time within the header's duration lies more than :data:`TRUNCATION_SLACK` past
    the display interval of the last decodable frame (starting at ``last_start``): a truncated
    file, whose frames end before its header says."""
    interval = 1.0 / info.fps if info.fps > 0 else 0.0
    return bool(len(times)) and min(float(np.max(times)), info.duration) > last_start + interval + TRUNCATION_SLACK


class SharedContainer:
    """One PyAV container per sample, opened on first use and shared by its video and audio reads
    (an mp4 open costs ~10 ms); decoding on one thread (:func:`single_threaded`)."""

    def __init__(self, path: str):
        self.path = path
        self._container = None

    def get(self):
        if self._container is None:
            try:
                self._container = av.open(self.path)
            except (av.FFmpegError, OSError) as e:
                raise DecodeError(self.path, "corrupt", str(e)) from e
            single_threaded(self._container)
        return self._container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
