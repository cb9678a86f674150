"""The ``torchcodec`` video backend: the PyTorch project's FFmpeg decoder (``VideoDecoder``).

torchcodec gives the frames played at given file times (``get_frames_played_at``, on a frame
index built by scanning the file: exact seeks), turned by the display rotation (torchcodec applies
it); they are resized here to the display size (bilinear with antialiasing, which also stretches
non-square pixels), so they show what the other backends show. Times before the first frame show
it; times past the last repeat it (counted as truncated, as elsewhere, past
:data:`~avssl.data.decode.probe.TRUNCATION_SLACK`). One FFmpeg thread: the loader's workers
parallelise.

With ``data.decode_on: device`` the worker reads the file's bytes only (:class:`EncodedVideo`) and
the frames are decoded after the transfer, by the same :class:`TorchCodecVideo` on the batch's
device (NVDEC on CUDA; :mod:`avssl.data.encoded`): the same frames as in the worker, with the same
timeline, rotation and display size.

torchcodec is an optional extra (``pip install 'avssl[torchcodec]'``) and loads FFmpeg's shared
libraries (major versions 4 to 8) at run time; :func:`check_torchcodec` names what to install
when either is missing.
"""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import torch
import torch.nn.functional as F

from avssl.data.decode.probe import TIME_TOLERANCE, DecodeError, MediaInfo, past_last_frame
from avssl.data.encoded import Decoded
from avssl.errors import ConfigError
from avssl.utils.device import to_device

log = logging.getLogger(__name__)

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
    """Frames of one file through torchcodec: ``source`` is its path or its bytes (a uint8 tensor in
    host memory), ``name`` names it in errors, ``device`` is where the frames are decoded."""

    def __init__(self, source: str | torch.Tensor, info: MediaInfo, height: int, width: int, *, name: str | None = None, device="cpu"):
        self.source, self.info, self.height, self.width, self.device = source, info, height, width, torch.device(device)
        self.name = name or str(source)
        self._decoder = None
        self.truncated = False  # some window ran past the last decodable frame

    def frames(self, times: np.ndarray) -> np.ndarray:
        """uint8 ``[times.size, H, W, 3]`` of the frames showing at ``times`` (timeline seconds)."""
        return np.ascontiguousarray(self.played(times).permute(0, 2, 3, 1).cpu().numpy())

    def played(self, times: np.ndarray) -> torch.Tensor:
        """uint8 ``[times.size, 3, H, W]`` on the decoder's device: the frames showing at ``times``
        (timeline seconds), at the display size."""
        from torchcodec.decoders import VideoDecoder

        try:
            if self._decoder is None:
                threads = dict(num_ffmpeg_threads=1) if self.device.type == "cpu" else {}
                self._decoder = VideoDecoder(self.source, seek_mode="exact", dimension_order="NCHW", device=str(self.device), **threads)
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
            raise DecodeError(self.name, "corrupt", f"torchcodec: {e}") from e
        last_start = float(torch.cat(pts).max()) - self.info.start
        self.truncated |= past_last_frame(times.reshape(-1), last_start, self.info)
        return self._display(torch.cat(frames))[to_device(torch.from_numpy(inverse), self.device)]  # no host wait on CUDA

    def _display(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW frames (torchcodec has applied the display rotation) at the display size (the
        resize stretches non-square pixels)."""
        if tuple(frames.shape[-2:]) != (self.height, self.width):
            frames = F.interpolate(frames.float(), size=(self.height, self.width), mode="bilinear", antialias=True, align_corners=False)
            frames = frames.round_().clamp_(0, 255).to(torch.uint8)
        return frames

    def close(self) -> None:
        self._decoder = None


class EncodedVideo:
    """The bytes of ``len(sizes)`` media files with the times of their clips' frames
    (``clips = (N, T)`` per video), decoded on the batch's device by :class:`TorchCodecVideo`
    (:mod:`avssl.data.encoded`); ``sizes`` is each video's display size at the clip's short side,
    at which the frames come out (``stored``: the same)."""

    __slots__ = ("clips", "data", "infos", "names", "sizes", "times")

    def __init__(
        self, data: list[torch.Tensor], times: list[np.ndarray], infos: list[MediaInfo], names: list[str], sizes: list[tuple[int, int]]
    ):
        self.data, self.times, self.infos, self.names, self.sizes = data, times, infos, names, sizes
        self.clips = tuple(times[0].shape) if times else (0, 0)

    @classmethod
    def read(cls, path: str, times: np.ndarray, info: MediaInfo, size: tuple[int, int]) -> EncodedVideo:
        """The file at ``path`` as bytes, with the times ``[N, T]`` its clips show."""
        try:
            data = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
        except OSError as e:
            raise DecodeError(path, "unreadable", str(e)) from e
        return cls([data], [times], [info], [path], [size])

    @classmethod
    def join(cls, parts: list[EncodedVideo]) -> EncodedVideo:
        """One payload for a batch's samples."""
        return cls(*([x for p in parts for x in getattr(p, name)] for name in ("data", "times", "infos", "names", "sizes")))

    @property
    def stored(self) -> list[tuple[int, int]]:
        return self.sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def __repr__(self) -> str:
        return f"EncodedVideo({len(self)} files x {self.clips[0]} clips x {self.clips[1]} frames, {sum(len(d) for d in self.data)} bytes)"

    def decode(self, device: torch.device) -> Decoded:
        """Each file's frames decoded on ``device``: the frames, the files that did not decode and
        how many had windows past their last frame."""
        frames: list[torch.Tensor | None] = []
        failed, truncated = set(), 0
        per_video = self.clips[0] * self.clips[1]
        for i, (data, times, info, name, (h, w)) in enumerate(zip(self.data, self.times, self.infos, self.names, self.sizes)):
            video = TorchCodecVideo(data, info, h, w, name=name, device=device)
            try:
                frames += list(video.played(times).unbind(0))
            except DecodeError as e:
                log.warning("skipping %s", e)
                failed.add(i)
                frames += [None] * per_video
            truncated += video.truncated
        return Decoded(frames, failed, truncated)
