"""Test media writer: exact control of time stamps, GOP, B-frames, audio rate / channels / codec."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def index_frame(i: int, height: int = 64, width: int = 64) -> np.ndarray:
    """A frame whose 8 horizontal bands spell ``i`` in binary (black / white survive H.264)."""
    img = np.zeros((height, width, 3), np.uint8)
    band = height // 8
    for bit in range(8):
        if (i >> bit) & 1:
            img[bit * band : (bit + 1) * band] = 255
    return img


def read_index(frame: np.ndarray) -> int:
    """Inverse of :func:`index_frame` (works on a resized frame: bands sampled at their centres)."""
    height = frame.shape[0]
    centres = [int((bit + 0.5) * height / 8) for bit in range(8)]
    return sum(1 << bit for bit, row in enumerate(centres) if frame[row, :, :].mean() > 127)


def write_media(
    path: Path,
    frames: np.ndarray | None,
    *,
    pts: list[Fraction] | None = None,
    fps: Fraction = Fraction(25),
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    audio_codec: str = "aac",
    gop: int = 12,
    bframes: int = 0,
) -> Path:
    """Write ``frames`` ``[F, H, W, 3]`` (H.264) shown at ``pts`` seconds (default ``i / fps``) and
    ``audio`` ``[C, S]`` float (``aac``, or ``pcm_f32le`` in a .mkv / .mov) to ``path``."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        vstream = None
        if frames is not None:
            vstream = container.add_stream("libx264", rate=fps)
            vstream.width, vstream.height = frames.shape[2], frames.shape[1]
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"crf": "10", "g": str(gop), "bf": str(bframes), "preset": "veryfast", "x264-params": "threads=1"}
            if pts is not None:
                vstream.codec_context.time_base = Fraction(1, 90000)
                vstream.time_base = Fraction(1, 90000)
        astream = None
        if audio is not None:
            layout = "mono" if audio.shape[0] == 1 else "stereo"
            astream = container.add_stream(audio_codec, rate=sample_rate, layout=layout)
        if vstream is not None:
            for i, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if pts is not None:
                    frame.pts = int(round(pts[i] * 90000))
                    frame.time_base = Fraction(1, 90000)
                else:
                    frame.pts = i
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
        if astream is not None:
            fmt = "fltp"
            chunk = 1024
            for start in range(0, audio.shape[1], chunk):
                block = np.ascontiguousarray(audio[:, start : start + chunk].astype(np.float32))
                frame = av.AudioFrame.from_ndarray(block, format=fmt, layout=astream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def sequential_times(path: Path) -> list[float]:
    """Presentation times of every frame, decoded from the start in order (the reference)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(float(f.pts * stream.time_base) for f in container.decode(stream))
