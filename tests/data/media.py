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


# sample format and numpy dtype each PCM encoder takes (packed: [1, samples * channels])
PCM_FORMATS = {
    "pcm_u8": ("u8", np.uint8),
    "pcm_s16le": ("s16", np.int16),
    "pcm_s24le": ("s32", np.int32),
    "pcm_s32le": ("s32", np.int32),
    "pcm_f32le": ("flt", np.float32),
    "pcm_f64le": ("dbl", np.float64),
}


PIX_FMTS = {"mjpeg": "yuvj420p", "prores_ks": "yuv422p10le"}  # pixel formats other than yuv420p


def pcm(audio: np.ndarray, dtype) -> np.ndarray:
    """Float ``audio`` in [-1, 1] as the integer (or float) samples of ``dtype``."""
    if dtype == np.uint8:
        return np.clip(np.round(audio * 128 + 128), 0, 255).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        full = -float(np.iinfo(dtype).min)
        return np.clip(np.round(audio * full), np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
    return audio.astype(dtype)


def write_media(
    path: Path,
    frames: np.ndarray | None,
    *,
    pts: list[Fraction] | None = None,
    fps: Fraction = Fraction(25),
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    audio_codec: str = "aac",
    audio_start: float = 0.0,
    gop: int = 12,
    bframes: int = 0,
    rotation: int = 0,
    sample_aspect: Fraction | None = None,
    video_codec: str = "libx264",
) -> Path:
    """Write ``frames`` ``[F, H, W, 3]`` (H.264) shown at ``pts`` seconds (default ``i / fps``) and
    ``audio`` ``[C, S]`` float (``aac``, ``libopus``, ``libmp3lame``, ``flac``; or a PCM codec of :data:`PCM_FORMATS` in a .mkv / .mov /
    .avi) starting at ``audio_start`` seconds. ``rotation``: counter-clockwise display rotation
    written into the display matrix; ``sample_aspect``: the pixels' aspect ratio; ``video_codec``:
    any FFmpeg video encoder (``libx264`` with the GOP / B-frame settings above)."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        vstream = None
        if frames is not None:
            vstream = container.add_stream(video_codec, rate=fps)
            vstream.width, vstream.height = frames.shape[2], frames.shape[1]
            vstream.pix_fmt = PIX_FMTS.get(video_codec, "yuv420p")
            if video_codec == "libx264":
                vstream.options = {"crf": "10", "g": str(gop), "bf": str(bframes), "preset": "veryfast", "x264-params": "threads=1"}
            else:
                vstream.options = {"g": str(gop), **({"crf": "10"} if video_codec == "libsvtav1" else {})}
                if video_codec != "libsvtav1":  # a bit rate (high) for the others; SVT-AV1 takes a quality
                    vstream.codec_context.bit_rate = 4_000_000
            if rotation:
                vstream.set_display_rotation(rotation)
            if sample_aspect is not None:
                vstream.codec_context.sample_aspect_ratio = sample_aspect
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
            fmt, dtype = PCM_FORMATS.get(audio_codec, ("fltp", np.float32))
            chunk = 1024
            offset = int(round(audio_start * sample_rate))
            for start in range(0, audio.shape[1], chunk):
                block = audio[:, start : start + chunk]
                if fmt == "fltp":
                    block = np.ascontiguousarray(block.astype(np.float32))
                else:  # packed: channels interleaved in one row
                    block = pcm(block.T.reshape(1, -1), dtype)
                frame = av.AudioFrame.from_ndarray(block, format=fmt, layout=astream.layout.name)
                frame.sample_rate = sample_rate
                frame.pts = offset + start
                frame.time_base = Fraction(1, sample_rate)
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
