"""The ``torchcodec`` video backend: the PyTorch project's FFmpeg decoder (``VideoDecoder``).

torchcodec gives the frames played at given file times (``get_frames_played_at``, on a frame
index built by scanning the file: exact seeks), turned by the display rotation (torchcodec applies
it); they are resized here to the display size (bilinear with antialiasing, which also stretches
non-square pixels), so they show what the other backends show. Times before the first frame show
it; times past the last repeat it (counted as truncated, as elsewhere, past
:data:`~avssl.data.decode.probe.TRUNCATION_SLACK`). One FFmpeg thread: the loader's workers
parallelise.

torchcodec is an optional extra (``pip install 'avssl[torchcodec]'``) and loads FFmpeg's shared
libraries (major versions 4 to 8) at run time; :func:`check_torchcodec` names what to install
when either is missing.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch
import torch.nn.functional as F

from avssl.data.decode.probe import TIME_TOLERANCE, DecodeError, MediaInfo, past_last_frame
from avssl.errors import ConfigError

INSTALL_FFMPEG = (
    "install FFmpeg's shared libraries (4 to 8) with the system's package manager "
    "(Debian / Ubuntu: apt install libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8, "
    "or the ffmpeg package; conda: conda install ffmpeg)"
)


def check_torchcodec(field: str = "data.video_backend") -> None:
    """Raise a one-line :class:`ConfigError` unless torchcodec and FFmpeg's libraries load."""
    if importlib.util.find_spec("torchcodec") is None:
        raise ConfigError(f"{field}: torchcodec is not installed: pip install 'avssl[torchcodec]'")
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads FFmpeg's libraries)
    except Exception as e:  # torchcodec raises RuntimeError / OSError when no FFmpeg it supports loads
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{field}: torchcodec cannot load FFmpeg ({first[:200]}): {INSTALL_FFMPEG}") from None


class TorchCodecVideo:
    """Frames of one file through torchcodec on the CPU."""

    def __init__(self, path: str, info: MediaInfo, height: int, width: int):
        self.path, self.info, self.height, self.width = path, info, height, width
        self._decoder = None
        self.truncated = False  # some window ran past the last decodable frame

    def frames(self, times: np.ndarray) -> np.ndarray:
        """uint8 ``[times.size, H, W, 3]`` of the frames showing at ``times`` (timeline seconds)."""
        from torchcodec.decoders import VideoDecoder

        try:
            if self._decoder is None:
                self._decoder = VideoDecoder(self.path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NCHW")
            meta = self._decoder.metadata
            # played_at takes [begin, end); end can be the last frame's own start: later times show it
            first, end = float(meta.begin_stream_seconds), float(meta.end_stream_seconds)
            # a time within TIME_TOLERANCE before a frame's start is on that frame (as every backend)
            file_times = np.maximum(times.reshape(-1) + self.info.start + TIME_TOLERANCE, first)
            uniq, inverse = np.unique(np.minimum(file_times, end), return_inverse=True)
            inside = uniq < end
            frames, pts = [], []
            if inside.any():
                played = self._decoder.get_frames_played_at(uniq[inside].tolist())
                frames.append(played.data)
                pts.append(played.pts_seconds)
            if not inside.all():  # the last frame, for every time from ``end`` on
                last = self._decoder.get_frames_at([len(self._decoder) - 1])
                frames.append(last.data)
                pts.append(last.pts_seconds)
        except (RuntimeError, ValueError, IndexError) as e:
            raise DecodeError(self.path, "corrupt", f"torchcodec: {e}") from e
        last_start = float(torch.cat(pts).max()) - self.info.start
        self.truncated |= past_last_frame(times.reshape(-1), last_start, self.info)
        return self._display(torch.cat(frames))[inverse]

    def _display(self, frames: torch.Tensor) -> np.ndarray:
        """uint8 NCHW frames (torchcodec has applied the display rotation) -> uint8 ``[N, H, W, 3]``
        at the display size (the resize stretches non-square pixels)."""
        if tuple(frames.shape[-2:]) != (self.height, self.width):
            frames = F.interpolate(frames.float(), size=(self.height, self.width), mode="bilinear", antialias=True, align_corners=False)
            frames = frames.round_().clamp_(0, 255).to(torch.uint8)
        return np.ascontiguousarray(frames.permute(0, 2, 3, 1).numpy())

    def close(self) -> None:
        self._decoder = None
