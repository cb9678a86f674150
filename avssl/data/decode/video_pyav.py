"""The ``pyav`` video backend: the frames shown at given times, decoded with PyAV.

Seek planning (:class:`KeyframeIndex`) is separate from frame picking (:meth:`PyAVVideo.frames`):
each pass seeks to the keyframe before the earliest time still wanted and decodes forward; it
ends when every time is served or when a keyframe lies nearer the next wanted time than the
frames left to decode (then the next pass seeks there), so two nearby clips cost one pass.
Packets whose frame no wanted time shows are decoded with ``skip_frame=NONREF`` (the decoder drops
them when nothing references them, e.g. the B-frames ``avssl prepare`` writes; only for the codecs
of :data:`NONREF_SKIP_CODECS`, whose decoders drop exactly those), and only the frames shown are
converted to RGB at the target size (swscale, which also applies the pixel aspect; the display
rotation is applied after it, see :func:`display_rgb`).
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from avssl.data.decode.probe import TIME_TOLERANCE, DecodeError, MediaInfo, SharedContainer, frame_time, past_last_frame

PACKET_LOOKAHEAD = 16  # packets read ahead to find the next display time (B-frame reordering depth)
# Codecs whose decoders drop exactly the non-reference frames under ``skip_frame=NONREF`` (checked
# frame by frame in tests/data/test_fidelity.py); others, e.g. AV1 with hidden frames, decode every frame.
NONREF_SKIP_CODECS = ("h264", "hevc", "mpeg4")
SEEK_BACKOFF = 1.0  # seconds to seek earlier when a seek lands after the wanted time
UNINDEXED_SEEK_GAP = 2.0  # without a keyframe index: seek again only across gaps this long
_local = threading.local()  # per-thread swscale context


def display_rgb(frame, rotation: int, height: int, width: int, reformatter: VideoReformatter) -> np.ndarray:
    """uint8 ``[height, width, 3]`` of a decoded video ``frame`` as displayed: scaled (which also
    stretches non-square pixels) so that, turned counter-clockwise by ``rotation`` degrees, it is
    ``height x width``."""
    turns = rotation // 90
    h, w = (width, height) if turns % 2 else (height, width)
    rgb = reformatter.reformat(frame, width=w, height=h, format="rgb24", threads=1).to_ndarray()
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class KeyframeIndex:
    """Where a seek lands: the keyframes' times from the container's index (decode times, shifted
    by the reordering delay ``pts - dts`` seen on decoded keyframes)."""

    def __init__(self, stream, origin: float):
        tb = float(stream.time_base)
        entries = stream.index_entries
        self.keys = np.sort([e.timestamp * tb - origin for e in entries if e.is_keyframe]) if entries else None
        self.delay = 0.0

    def observe(self, frame, time_base: float) -> None:
        """Learn the reordering delay from a decoded keyframe."""
        if frame.key_frame and frame.dts is not None and frame.pts is not None:
            self.delay = max(self.delay, float((frame.pts - frame.dts) * time_base))

    def seek_time(self, target: float) -> float:
        """The time to seek to for a frame shown at ``target``."""
        return max(0.0, target - self.delay)

    def between(self, lo: float, hi: float) -> bool:
        """Whether a keyframe is displayed in ``(lo, hi]`` (seeking there beats decoding on)."""
        if self.keys is None:
            return hi - lo > UNINDEXED_SEEK_GAP
        i = np.searchsorted(self.keys + self.delay, lo, side="right")
        return bool(i < len(self.keys) and self.keys[i] + self.delay <= hi)


class PyAVVideo:
    """Frames of one file through PyAV, from the sample's shared container."""

    def __init__(self, path: str, info: MediaInfo, height: int, width: int, container: SharedContainer):
        self.path, self.info, self.height, self.width, self.container = path, info, height, width, container
        self.truncated = False  # some window ran past the last decodable frame

    def frames(self, times: np.ndarray) -> np.ndarray:
        """uint8 ``[times.size, H, W, 3]`` of the frames showing at ``times`` (seconds)."""
        flat = times.reshape(-1)
        order = np.argsort(flat, kind="stable")
        wanted = flat[order]  # sorted
        out = np.empty((len(flat), self.height, self.width, 3), np.uint8)
        container = self.container.get()
        stream = container.streams.video[0]
        index = KeyframeIndex(stream, self.info.start)
        k = 0  # the next wanted time to serve
        try:
            while k < len(wanted):
                seek_to = index.seek_time(float(wanted[k]))
                while (served := self._pass(container, stream, index, seek_to, wanted, order, k, out)) is None:
                    seek_to = max(0.0, seek_to - SEEK_BACKOFF)  # the seek landed after the wanted time
                k = served
        except av.FFmpegError as e:
            raise DecodeError(self.path, "corrupt", str(e)) from e
        return out

    def _pass(self, container, stream, index: KeyframeIndex, seek_to: float, wanted, order, k: int, out) -> int | None:
        """Decode from ``seek_to`` and fill ``out`` for the wanted times from ``k`` on that the
        frames reach; returns the next unserved index, or ``None`` when the seek landed after
        ``wanted[k]`` (seek earlier). Times past the last frame repeat it."""
        tb, first = float(stream.time_base), k
        last, last_t = None, -math.inf
        for frame in self.decode_from(container, stream, seek_to, wanted):
            t = frame_time(frame, tb, self.info.start)
            index.observe(frame, tb)
            if last is None and t > wanted[k] + TIME_TOLERANCE and seek_to > 0:
                return None
            converted = None
            while k < len(wanted) and last is not None and wanted[k] + TIME_TOLERANCE < t:
                converted = self._rgb(last) if converted is None else converted
                out[order[k]] = converted
                k += 1
            last, last_t = frame, t
            if k == len(wanted) or (k != first and index.between(t, float(wanted[k]))):
                return k  # done, or a keyframe nearer the next time: seek to it
        if last is None:  # nothing decoded from here on
            if seek_to > 0:
                return None
            raise DecodeError(self.path, "no_frames")
        self.truncated |= past_last_frame(wanted[k:], last_t, self.info)
        out[order[k:]] = self._rgb(last)
        return len(wanted)

    def decode_from(self, container, stream, seconds: float, wanted: np.ndarray):
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
        skip = ctx.name in NONREF_SKIP_CODECS
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
                # shown iff some wanted time falls in [pts, next pts) on the timeline (file time
                # minus the file's start: ``wanted`` is timeline time); unknown next pts: decode
                i = np.searchsorted(wanted, float(packet.pts * tb) - self.info.start - TIME_TOLERANCE)
                shown = bool(i < len(wanted)) and (not later or wanted[i] < float(min(later) * tb) - self.info.start - TIME_TOLERANCE)
                behind.append(packet.pts)
            ctx.skip_frame = "DEFAULT" if shown or not skip else "NONREF"
            yield from packet.decode()

    def _rgb(self, frame) -> np.ndarray:
        """``frame`` resized to the output size as RGB through this thread's cached single-threaded
        swscale context (``VideoFrame.to_ndarray(width=...)`` builds one per call: ~50x slower on
        small frames), in display orientation. The cache is per process: a context inherited
        through ``fork`` (a DataLoader worker) is never used, its thread state belongs to the parent."""
        key = (os.getpid(), threading.get_ident())
        if getattr(_local, "key", None) != key:
            _local.key, _local.reformatter = key, VideoReformatter()
        return display_rgb(frame, self.info.rotation, self.height, self.width, _local.reformatter)
