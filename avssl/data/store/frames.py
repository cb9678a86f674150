"""Frames that travel to the batch's device still JPEG-encoded (``data.decode_on: device``).

A worker returns the bytes of the frames its clips show (:class:`EncodedFrames`), the collate
function joins a batch's into one buffer, and after the transfer :func:`decode_frames` decodes the
whole batch in one :func:`torchvision.io.decode_jpeg` call on the batch's device (nvjpeg on CUDA,
libjpeg-turbo on the CPU), resizes frames stored at another short side, and zero-pads them into
the batch layout of :mod:`avssl.data.dataset` (``video`` ``[B, N, T, H, W, 3]``; ``extent`` is set
by the collate function). The bytes stay in host memory: nvjpeg reads its input from there, and a
plain object (not a tensor) is left where it is by Lightning's transfer.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg

ENCODED_KEY = "frames"  # the sample / batch key of encoded frames (``video`` once decoded)


class EncodedFrames:
    """The JPEG bytes of ``len(sizes)`` videos' ``clips = (N, T)`` frames each: frame ``j`` is
    ``data[offsets[j]:offsets[j + 1]]`` (videos one after another, clip-major); ``stored`` is each
    video's stored ``(H, W)``, ``sizes`` its ``(H, W)`` after the resize to the clip's short side."""

    __slots__ = ("clips", "data", "offsets", "sizes", "stored")

    def __init__(
        self, data: torch.Tensor, offsets: list[int], clips: tuple[int, int], stored: list[tuple[int, int]], sizes: list[tuple[int, int]]
    ):
        self.data, self.offsets, self.clips, self.stored, self.sizes = data, offsets, clips, stored, sizes

    @classmethod
    def join(cls, parts: list[EncodedFrames]) -> EncodedFrames:
        """One buffer for a batch's samples (all with the same clips per video and frames per clip)."""
        offsets, base = [0], 0
        for part in parts:
            offsets += [base + o for o in part.offsets[1:]]
            base += part.offsets[-1]
        data = torch.cat([part.data for part in parts]) if parts else torch.zeros(0, dtype=torch.uint8)
        return cls(data, offsets, parts[0].clips, [s for p in parts for s in p.stored], [s for p in parts for s in p.sizes])

    def __len__(self) -> int:
        return len(self.sizes)

    def __repr__(self) -> str:
        return f"EncodedFrames({len(self)} videos x {self.clips[0]} clips x {self.clips[1]} frames, {self.offsets[-1]} bytes)"


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 ``[..., 3, h, w]`` frames resized to ``size`` (bilinear, antialiased). On the CPU the
    uint8 kernel runs (about 2x faster than through float32); CUDA has no uint8 kernel, so there
    the frames go through float32 and may differ from the CPU's by 1 in a few pixels."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    flat = frames.reshape(-1, *frames.shape[-3:])
    if flat.device.type == "cpu":
        out = F.interpolate(flat, size=size, mode="bilinear", antialias=True, align_corners=False)
    else:
        out = F.interpolate(flat.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(*frames.shape[:-2], *size)


def decode_frames(batch: dict) -> dict:
    """``batch`` with its encoded frames decoded on the batch's device into ``video``; a batch
    without encoded frames is returned as it is. A video whose frames do not decode is dropped
    from the batch and counted in ``num_failed`` (a batch of only such videos keeps the counters
    alone, as the collate function returns a batch whose samples all failed)."""
    encoded: EncodedFrames | None = batch.get(ENCODED_KEY)
    if encoded is None:
        return batch
    device = batch["extent"].device
    images, failed = _decode(encoded, device)
    n, t = encoded.clips
    per_video = n * t
    keep = [i for i in range(len(encoded)) if i not in failed]
    out = {k: v for k, v in batch.items() if k != ENCODED_KEY}
    if failed:
        out = _drop(out, len(encoded), keep, device)
        out["num_failed"] = out["num_failed"] + len(failed)
        if not keep:
            return {"num_failed": out["num_failed"]}
    sizes = [encoded.sizes[i] for i in keep]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    video = torch.zeros((len(keep), n, t, height, width, 3), dtype=torch.uint8, device=device)
    groups: dict[tuple, list[int]] = defaultdict(list)  # videos of one stored and output size decode as one stack
    for row, i in enumerate(keep):
        groups[(encoded.stored[i], encoded.sizes[i])].append(row)
    for (_, (h, w)), rows in groups.items():
        frames = torch.stack([images[keep[r] * per_video + j] for r in rows for j in range(per_video)])
        frames = resize_frames(frames, (h, w)).reshape(len(rows), n, t, 3, h, w).permute(0, 1, 2, 4, 5, 3)
        if len(rows) == len(keep):
            video[..., :h, :w, :] = frames
        else:
            video[torch.tensor(rows, device=device), ..., :h, :w, :] = frames
    out["video"] = video
    return out


def _decode(encoded: EncodedFrames, device: torch.device) -> tuple[list[torch.Tensor | None], set[int]]:
    """Every frame decoded in one batched call; when that fails (a damaged frame), video by video:
    the frames, and the videos that did not decode."""
    views = [encoded.data[a:b] for a, b in zip(encoded.offsets[:-1], encoded.offsets[1:])]
    try:
        return decode_jpeg(views, device=device), set()
    except RuntimeError:
        per_video = encoded.clips[0] * encoded.clips[1]
        images: list[torch.Tensor | None] = []
        failed = set()
        for i in range(len(encoded)):
            try:
                images += decode_jpeg(views[i * per_video : (i + 1) * per_video], device=device)
            except RuntimeError:
                failed.add(i)
                images += [None] * per_video
        return images, failed


def _drop(batch: dict, size: int, keep: list[int], device: torch.device) -> dict:
    """The batch's per-video entries (tensors and lists of length ``size``) at ``keep`` only."""
    index = torch.tensor(keep, dtype=torch.long, device=device)
    out = {}
    for key, value in batch.items():
        if torch.is_tensor(value) and value.dim() and value.shape[0] == size:
            out[key] = value.index_select(0, index.to(value.device))
        elif isinstance(value, list) and len(value) == size:
            out[key] = [value[i] for i in keep]
        else:
            out[key] = value
    return out
