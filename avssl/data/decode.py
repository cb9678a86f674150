"""Decoding of clip windows: uint8 frames and float32 mono audio.

* Video, ``backend="decord"`` (the default): decord's ``VideoReader`` with frames
  resized inside the decoder; PyAV is the fallback for files decord cannot read (e.g. AV1) or
  decodes to a wrong shape (decord 0.6.0 returns 4- or 6-channel buffers for some output widths,
  e.g. 24, 48 or 72 px: detected and routed to PyAV), and decodes the codecs of
  :data:`PYAV_ONLY_CODECS` (HEVC: decord seeks to wrong frames in open-GOP streams).
* Video, ``backend="pyav"``: one forward pass from the keyframe before the first clip, seeking
  again only when a keyframe lies nearer the next clip; packets whose frame no clip shows are
  decoded with ``skip_frame=NONREF`` (the decoder drops them when nothing references them, e.g.
  the B-frames ``avssl prepare`` writes; H.264, HEVC and MPEG-4 Part 2 only, the codecs whose
  decoders drop exactly those, see :data:`NONREF_SKIP_CODECS`) and only the frames shown are
  converted to RGB at the target size. The container is shared with the audio reads (one open per sample). Both
  backends decode on one thread (loader workers provide the parallelism). On one thread it is on
  par with decord 0.6.0 on raw files and faster on prepared copies and small files
  (``benchmarks/loader.py``, ``benchmarks/step.py``; numbers in docs/benchmarks.md and docs/guides/data.md).
* Audio: PyAV seek to the window, decode only the packets covering it, mono down-mix,
  resample to the configured rate with ``torchaudio.functional.resample`` and pad/trim to exactly
  ``round(clip_seconds * rate)`` samples. (decord's ``AudioReader`` decodes the whole track on
  construction, which is several times slower for two short clips.)

Prepared copies (``avssl prepare``) keep their audio in a sidecar WAV (mono PCM16 at the prepared
rate). A sidecar is used only when the ``prepare_report.json`` of a directory above the video lists
it as that video's audio (a WAV that merely shares the video's name is never taken for its audio);
:func:`probe` then reports its rate and :class:`ClipDecoder` reads the window by sample range (no
decoding, no seek inaccuracy).

One presentation timeline: frame and sample times are the container's time stamps (stream start
times and edit lists applied by the demuxer) minus the container's start time, so the audio and
the video of a file whose streams start late, or at different times, stay in sync, and time 0 is
the start of the file's earliest stream. decord numbers a video's frames from the start of the
video stream; its times are shifted by that stream's start. Frame times come from the time stamps
(``VideoReader.get_frame_timestamp``; the frames' pts with PyAV), not from ``index / fps``, so
variable-frame-rate files give the right frames.

Display geometry: frames are shown as a player shows them. The sample aspect ratio stretches the
width (a 2:1 SAR shows 32 x 32 coded pixels as 64 x 32), then a rotation in the display matrix (90,
180 or 270 degrees, as phones write) turns the frame; both apply before the short-side resize.
:func:`probe` reports that display size; decord turns the frame itself and its resize to the display
size stretches the pixels, the PyAV path does both in :func:`display_rgb`.

Audio samples of every format (unsigned 8-bit, signed 16/32/64-bit, float, double; planar or
interleaved) are scaled to [-1, 1] (unsigned 8-bit around 128) and down-mixed to mono. Float
samples above full scale are clipped to [-1, 1] after resampling, the same policy prepared copies
apply when they store 16-bit PCM, so a raw file and its prepared copy give the same input.

Truncated files: a file whose frames end before the duration its header claims (a cut download)
decodes the frames it has; a window reaching more than :data:`TRUNCATION_SLACK` seconds past
the last decodable frame sets :attr:`ClipDecoder.truncated`, which the dataset counts.

The public entry points are :func:`probe` (metadata, read in the main process when the index is
built) and :class:`ClipDecoder` (opened lazily inside each DataLoader worker).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import wave
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import torch
import torchaudio.functional as AF
from av.video.reformatter import VideoReformatter

log = logging.getLogger(__name__)
_local = threading.local()  # per-thread swscale context of the PyAV path
AUDIO_PREROLL = 0.1  # seconds decoded and discarded before each audio window
VIDEO_BACKENDS = ("decord", "pyav")
PACKET_LOOKAHEAD = 16  # packets read ahead to find the next display time (B-frame reordering depth)
# Codecs whose decoders drop exactly the non-reference frames under ``skip_frame=NONREF`` (checked
# frame by frame in tests/data/test_fidelity.py); others, e.g. AV1 with hidden frames, decode every frame.
NONREF_SKIP_CODECS = ("h264", "hevc", "mpeg4")
# decord 0.6.0 returns frames several positions off after seeking in open-GOP HEVC (x265's default):
# such files are decoded by PyAV under either backend (tests/data/test_fidelity.py).
PYAV_ONLY_CODECS = ("hevc",)
TRUNCATION_SLACK = 0.25  # seconds past the last frame's display interval before a window counts as truncated
PREPARE_REPORT = "prepare_report.json"  # written by ``avssl prepare``; lists the sidecar of each copy


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


def probe(path: str, *, video: bool = True) -> MediaInfo:
    """Read stream metadata with PyAV (headers and the first video frame, for its display
    rotation). ``width`` / ``height`` are the display size: sample aspect ratio and rotation
    applied. ``video=False`` reads audio-only files too (a WAV, or a video whose frames are not
    wanted): the frame fields are then 0 and the duration is the audio's. Raises
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
            sidecar = sidecar_path(path)
            if sidecar is not None:
                with wave.open(sidecar) as w:
                    audio_rate = w.getframerate()
            info = MediaInfo(
                float(duration), width, height, fps, audio_rate, sidecar, start, video_start, rotation, sar, vs.codec_context.name
            )
    except DecodeError:
        raise
    except FileNotFoundError as e:
        raise DecodeError(path, "missing", str(e)) from e
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


def sidecar_path(path: str) -> str | None:
    """The sidecar WAV that ``avssl prepare`` wrote for ``path``, if a ``prepare_report.json`` in a
    directory above it lists one (and it exists); ``None`` otherwise."""
    path = Path(path).resolve()
    for parent in path.parents:
        sidecars = _prepared_sidecars(str(parent))
        if sidecars is not None:
            wav = sidecars.get(path.relative_to(parent).as_posix())
            return str(parent / wav) if wav and (parent / wav).is_file() else None
    return None


@lru_cache(maxsize=256)
def _prepared_sidecars(directory: str) -> dict[str, str] | None:
    """``{video: wav}`` (paths relative to ``directory``) from its ``prepare_report.json``, or
    ``None`` when it has none."""
    report = Path(directory) / PREPARE_REPORT
    if not report.is_file():
        return None
    try:
        files = json.loads(report.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {f["output"]: f["audio"] for f in files.values() if f.get("status") == "prepared" and f.get("audio")}


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


def display_rgb(frame, rotation: int, height: int, width: int, reformatter: VideoReformatter) -> np.ndarray:
    """uint8 ``[height, width, 3]`` of a decoded video ``frame`` as displayed: scaled (which also
    stretches non-square pixels) so that, turned counter-clockwise by ``rotation`` degrees, it is
    ``height x width``."""
    turns = rotation // 90
    h, w = (width, height) if turns % 2 else (height, width)
    rgb = reformatter.reformat(frame, width=w, height=h, format="rgb24", threads=1).to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


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


class ClipDecoder:
    """Decodes clip windows of one file. Create it inside the worker that uses it."""

    def __init__(self, path: str, info: MediaInfo, *, short_side: int | None, sample_rate: int, backend: str = "decord"):
        if backend not in VIDEO_BACKENDS:
            raise ValueError(f"video backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
        self.path, self.info, self.backend = path, info, backend
        self.height, self.width = resized_shape(info.height, info.width, short_side)
        self.sample_rate = sample_rate
        self._reader = None
        self._container = None  # one PyAV container per sample, shared by video and audio
        self.skip_unshown = True  # PyAV path: let the decoder drop unreferenced frames no time shows
        self.decoded_frames = 0  # PyAV path: video frames decoded so far (diagnostics)
        self._frame_starts: np.ndarray | None = None
        self.audio_padded = False  # set by audio(): some window ran past the end of the audio
        self.truncated = False  # set by video(): some window ran past the last decodable frame

    # ------------------------------------------------------------------ video
    def frame_times(self, starts: np.ndarray, clip_seconds: float, num_frames: int) -> np.ndarray:
        """Times ``[N, T]`` of T frames spread evenly over each clip ``[start, start + clip)``."""
        offsets = (np.arange(num_frames) + 0.5) * clip_seconds / num_frames
        return starts[:, None] + offsets[None, :]

    def __enter__(self) -> ClipDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder handles (also released when the object is collected)."""
        if self._container is not None:
            self._container.close()
            self._container = None
        self._reader = None

    def _open(self):
        if self._container is None:
            try:
                self._container = av.open(self.path)
            except (av.FFmpegError, OSError) as e:
                raise DecodeError(self.path, "corrupt", str(e)) from e
            single_threaded(self._container)
        return self._container

    def video(self, times: np.ndarray) -> np.ndarray:
        """uint8 ``[*times.shape, H, W, 3]`` of the frames showing at ``times`` (seconds)."""
        frames = None
        if self.backend == "decord" and self.info.codec not in PYAV_ONLY_CODECS:
            try:
                frames = self._video_decord(times)
            except DecodeError:
                raise
            except Exception as e:  # decord raises its own error types for files it cannot parse
                log.debug("decord failed on %s (%s); using PyAV", self.path, e)
        if frames is None:
            frames = self._video_pyav(times)
        return frames.reshape(*times.shape, self.height, self.width, 3)

    def _video_decord(self, times: np.ndarray) -> np.ndarray | None:
        import decord

        if self._reader is None:
            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), width=self.width, height=self.height, num_threads=1)
            # decord's times count from the video stream's start; the timeline from the file's
            self._frame_starts = self._reader.get_frame_timestamp(np.arange(len(self._reader)))[:, 0] + (
                self.info.video_start - self.info.start
            )
        self._check_truncation(times, float(self._frame_starts[-1]))
        idx = self._indices(times.reshape(-1), self._frame_starts)
        uniq, inverse = np.unique(idx, return_inverse=True)
        batch = self._reader.get_batch(uniq.tolist()).asnumpy()
        if batch.shape[1:] != (self.height, self.width, 3):
            return None  # decord 0.6.0 mis-strides some widths: let PyAV decode this file
        return batch[inverse]

    def _video_pyav(self, times: np.ndarray) -> np.ndarray:
        """Decode forward from the keyframe before the first time and seek again only when a
        keyframe lies between the last decoded frame and the next time (so two nearby clips cost
        one pass). Only the frames shown at ``times`` are converted (resize + RGB in swscale)."""
        flat = times.reshape(-1)
        order = np.argsort(flat, kind="stable")
        wanted = flat[order]
        out = np.empty((len(flat), self.height, self.width, 3), np.uint8)
        container = self._open()
        stream = container.streams.video[0]
        tb, origin = float(stream.time_base), self.info.start
        keys = np.sort([e.timestamp * tb - origin for e in stream.index_entries if e.is_keyframe]) if stream.index_entries else None
        key_delay = 0.0  # pts - dts of keyframes (B-frame reordering); the index holds dts
        k, frames, last, last_t, seek_to = 0, None, None, -math.inf, 0.0
        need_seek, seek_k = True, -1  # seek_k: the time index the last seek was made for

        def key_between(lo: float, hi: float) -> bool:
            if keys is None:
                return hi - lo > 2.0  # no index: seek only across long gaps
            i = np.searchsorted(keys + key_delay, lo, side="right")
            return bool(i < len(keys) and keys[i] + key_delay <= hi)

        try:
            while k < len(order):
                target = float(flat[order[k]])
                if need_seek or (last is not None and k != seek_k and key_between(last_t, target)):
                    seek_to, seek_k, need_seek = max(0.0, target - key_delay), k, False
                    frames, last, last_t = self._decode_from(container, stream, seek_to, wanted), None, -math.inf
                converted = None
                for frame in frames:
                    t = (float(frame.pts * tb) if frame.pts is not None else float(frame.time or 0)) - origin
                    if frame.key_frame and frame.dts is not None and frame.pts is not None:
                        key_delay = max(key_delay, float((frame.pts - frame.dts) * tb))
                    if last is None and t > target + 1e-4 and seek_to > 0:  # landed after the target
                        seek_to = max(0.0, seek_to - 1.0)
                        frames = self._decode_from(container, stream, seek_to, wanted)
                        break
                    while k < len(order) and last is not None and flat[order[k]] + 1e-4 < t:
                        if converted is None:
                            converted = self._rgb(last)
                        out[order[k]] = converted
                        k += 1
                    last, last_t, converted = frame, t, None
                    if k == len(order) or (k != seek_k and key_between(t, float(flat[order[k]]))):
                        break  # done, or a keyframe nearer the next time: seek to it
                else:  # end of stream: times past the last frame repeat it
                    if last is None and seek_to > 0:  # the seek landed past the last frame
                        seek_to = max(0.0, seek_to - 1.0)
                        frames = self._decode_from(container, stream, seek_to, wanted)
                        continue
                    if last is None:
                        raise DecodeError(self.path, "no_frames")
                    self._check_truncation(flat[order[k:]], last_t)
                    out[order[k:]] = self._rgb(last)
                    k = len(order)
        except av.FFmpegError as e:
            raise DecodeError(self.path, "corrupt", str(e)) from e
        return out

    def _check_truncation(self, times: np.ndarray, last_start: float) -> None:
        """Set :attr:`truncated` when a time within the header's duration lies more than
        :data:`TRUNCATION_SLACK` past the display interval of the last decodable frame (starting
        at ``last_start``)."""
        interval = 1.0 / self.info.fps if self.info.fps > 0 else 0.0
        if len(times) and min(float(np.max(times)), self.info.duration) > last_start + interval + TRUNCATION_SLACK:
            self.truncated = True

    def _rgb(self, frame) -> np.ndarray:
        """``frame`` resized to the output size as RGB through this thread's cached single-threaded
        swscale context (``VideoFrame.to_ndarray(width=...)`` builds one per call: ~50x slower on
        small frames), in display orientation (the resize to the output size also stretches
        non-square pixels). The cache is per process: a context inherited through ``fork`` (a
        DataLoader worker) is never used, its thread state belongs to the parent."""
        key = (os.getpid(), threading.get_ident())
        if getattr(_local, "key", None) != key:
            _local.key, _local.reformatter = key, VideoReformatter()
        return display_rgb(frame, self.info.rotation, self.height, self.width, _local.reformatter)

    def _decode_from(self, container, stream, seconds: float, wanted: np.ndarray):
        """Frames from the keyframe before ``seconds`` on, in display order. Packets whose frame is
        shown at none of the sorted times ``wanted`` are decoded with ``skip_frame=NONREF``: the
        decoder drops them when no other frame references them (non-reference B-frames, as
        ``avssl prepare`` writes), and decodes them anyway otherwise."""
        seconds += self.info.start  # timeline -> file time
        container.seek(max(0, int(seconds / stream.time_base) - 1), stream=stream, backward=True, any_frame=False)
        ctx, tb = stream.codec_context, float(stream.time_base)
        ahead: deque = deque()  # packets read, not yet decoded
        behind: deque = deque(maxlen=PACKET_LOOKAHEAD)  # pts of the packets decoded last
        packets = container.demux(stream)
        skip = self.skip_unshown and ctx.name in NONREF_SKIP_CODECS
        while True:
            for packet in packets:  # the next display time is within the reordering depth
                ahead.append(packet)
                if len(ahead) > PACKET_LOOKAHEAD:
                    break
            if not ahead:
                return
            packet = ahead.popleft()
            shown = True
            if packet.pts is not None and packet.size:
                nearby = [q.pts for q in ahead if q.pts is not None] + list(behind)
                later = [pts for pts in nearby if pts > packet.pts]
                i = np.searchsorted(wanted, float(packet.pts * tb) - 1e-4)
                # shown iff some wanted time falls in [pts, next pts); unknown next pts: decode
                shown = bool(i < len(wanted)) and (not later or wanted[i] < float(min(later) * tb) - 1e-4)
                behind.append(packet.pts)
            ctx.skip_frame = "DEFAULT" if shown or not skip else "NONREF"
            for frame in packet.decode():
                self.decoded_frames += 1
                yield frame

    @staticmethod
    def _indices(times: np.ndarray, frame_starts: np.ndarray) -> np.ndarray:
        """Index of the frame displayed at each time (the last frame starting at or before it).

        Time stamps are floats from ``pts * time_base``: a 0.1 ms tolerance keeps a time that
        falls exactly on a frame boundary on the frame that starts there."""
        idx = np.searchsorted(frame_starts, times + 1e-4, side="right") - 1
        return np.clip(idx, 0, len(frame_starts) - 1)

    # ------------------------------------------------------------------ audio
    def audio(self, starts: np.ndarray, clip_seconds: float) -> np.ndarray:
        """float32 ``[N, round(clip_seconds * rate)]`` mono windows in [-1, 1] (clipped after
        resampling); zeros where the track has no samples."""
        n_out = int(round(clip_seconds * self.sample_rate))
        if not self.info.has_audio:
            raise DecodeError(self.path, "no_audio_stream")
        native = self.info.audio_rate
        n_native = int(math.ceil(clip_seconds * native)) + 1
        if self.info.sidecar:
            clips, covered = zip(*(self._sidecar_window(float(s), n_native, native) for s in starts))
        else:
            clips, covered = self._audio_windows(starts, n_native, native)
        # zero padding where the audio track ends before the window does (1 ms slack for codec framing)
        self.audio_padded = any(c < n_native - 1 - native // 1000 for c in covered)
        wave = torch.from_numpy(np.stack(clips))
        if native != self.sample_rate:
            wave = AF.resample(wave, native, self.sample_rate)
        n = min(n_out, wave.shape[1])
        out = np.zeros((len(starts), n_out), np.float32)
        out[:, :n] = wave[:, :n].numpy()
        return np.clip(out, -1.0, 1.0, out=out)  # NaN stays NaN: the dataset counts and zeroes it

    def _sidecar_window(self, start: float, n_samples: int, rate: int) -> tuple[np.ndarray, int]:
        """Like :meth:`_audio_window`, from the prepared mono PCM16 WAV by sample range."""
        out = np.zeros(n_samples, np.float32)
        try:
            with wave.open(self.info.sidecar) as w:
                first = int(round(start * rate))
                if first < w.getnframes():
                    w.setpos(first)
                    data = np.frombuffer(w.readframes(n_samples), dtype="<i2").astype(np.float32) / 32767
                    out[: len(data)] = data
                    return out, len(data)
        except (OSError, EOFError, wave.Error) as e:
            raise DecodeError(self.info.sidecar, "corrupt", str(e)) from e
        return out, 0

    def _audio_windows(self, starts: np.ndarray, n_samples: int, rate: int) -> tuple[list[np.ndarray], list[int]]:
        """``n_samples`` mono samples at the native rate from each start (zeros where the track has
        none), and for each the index one past the last sample the track covered. One container
        open for all windows, shared with the PyAV video path (an mp4 open costs ~10 ms)."""
        outs, covers = [], []
        container = self._open()
        try:
            stream = container.streams.audio[0]
            for start in starts:
                out, covered = self._window(container, stream, float(start), n_samples, rate, self.info.start)
                outs.append(out)
                covers.append(covered)
        except av.FFmpegError as e:
            raise DecodeError(self.path, "corrupt", str(e)) from e
        return outs, covers

    @staticmethod
    def _window(container, stream, start: float, n_samples: int, rate: int, origin: float) -> tuple[np.ndarray, int]:
        """``n_samples`` from timeline time ``start`` (file time ``start + origin``)."""
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
