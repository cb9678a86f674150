"""The prepared timeline that both output formats of ``avssl prepare`` store: frames at a constant
fps and mono audio at a fixed rate, on the source's presentation timeline.

Frame ``k`` shows from time ``k / fps`` the source frame a player displays then; audio sample
``i`` is time ``i / rate``. An mp4 copy (:mod:`~avssl.prepare.mp4`) encodes exactly these frames
and writes these samples to its WAV sidecar; a shard store (:mod:`~avssl.prepare.shards`) stores
them as JPEG and PCM, which is why both give the same clips.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np
import torch
import torchaudio.functional as AF
from av.video.reformatter import VideoReformatter

from avssl.data.decode import (
    TIME_TOLERANCE,
    TRUNCATION_SLACK,
    DecodeError,
    MediaInfo,
    audio_samples,
    display_rgb,
    frame_time,
    resized_shape,
)
from avssl.data.formats import PrepareConfig


def timeline_frames(src: str, info: MediaInfo, cfg: PrepareConfig) -> Iterator[np.ndarray]:
    """RGB frames at ``cfg.fps`` on the source's timeline, resized to ``cfg.short_side`` in display
    orientation: frame ``k`` (time ``k / fps``) shows the source frame displayed then, up to the
    header's duration. Raises ``truncated`` when the source's frames end before that duration."""
    out_h, out_w = resized_shape(info.height, info.width, cfg.short_side)
    reformatter = VideoReformatter()
    with av.open(src) as source:
        stream = source.streams.video[0]
        tb = float(stream.time_base)
        k, last, t = 0, None, 0.0
        for frame in source.decode(stream):
            t = frame_time(frame, tb, info.start)
            # output frame k (time k / fps) shows the last source frame starting at or before it
            while last is not None and k / cfg.fps + TIME_TOLERANCE < t:
                yield last
                k += 1
            last = display_rgb(frame, info.rotation, out_h, out_w, reformatter)
        if last is None:
            raise DecodeError(src, "no_frames")
        interval = 1.0 / info.fps if info.fps > 0 else 0.0
        if t + interval + TRUNCATION_SLACK < info.duration:
            raise DecodeError(src, "truncated", f"frames end at {t + interval:.2f} s of the {info.duration:.2f} s its header gives")
        while k / cfg.fps < info.duration - TIME_TOLERANCE:
            yield last
            k += 1


def timeline_audio(src: str, rate: int, info: MediaInfo) -> tuple[np.ndarray, int]:
    """The source's audio as mono int16 samples at ``rate`` on the video's timeline: sample ``i``
    is timeline time ``i / rate`` (a stream that starts late is preceded by silence, gaps stay
    silent), and the count of non-finite samples (set to 0). Samples are clipped to [-1, 1] (the
    decoder's policy for raw files). A source that is itself a prepared copy has its audio in its
    sidecar WAV, whose sample 0 is already timeline 0."""
    chunks, native = [], None
    audio_src, origin = (info.sidecar, 0.0) if info.sidecar else (src, info.start)
    with av.open(audio_src) as container:
        stream = container.streams.audio[0]
        native, tb = stream.sample_rate, stream.time_base
        position = 0  # next sample index at the native rate
        for frame in container.decode(stream):
            data = audio_samples(frame)
            first = position if frame.pts is None else int(round((float(frame.pts * tb) - origin) * native))
            if first > position:  # the stream starts late or has a gap: silence
                chunks.append(np.zeros(first - position, np.float32))
                position = first
            data = data[max(0, position - first) :]  # overlaps what is written (or precedes timeline 0)
            chunks.append(data)
            position += len(data)
    wave_data = torch.from_numpy(np.concatenate(chunks) if chunks else np.zeros(0, np.float32))
    nonfinite = int((~torch.isfinite(wave_data)).sum())
    wave_data = torch.nan_to_num(wave_data, nan=0.0, posinf=0.0, neginf=0.0)
    if native != rate and len(wave_data):
        wave_data = AF.resample(wave_data, native, rate)
    return (wave_data.clamp(-1, 1) * 32767).round().to(torch.int16).numpy(), nonfinite
