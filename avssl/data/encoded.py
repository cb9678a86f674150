"""Frames that travel to the batch's device still encoded, decoded there (``data.decode_on: device``).

With ``decode_on: device`` a loader worker does not decode a clip's frames: it returns their
encoded form, one of two payloads with the same interface —

* a shard store's JPEG frames (:class:`~avssl.data.store.frames.EncodedFrames`): the whole batch
  decoded in one :func:`torchvision.io.decode_jpeg` call (nvjpeg on CUDA, libjpeg-turbo on the CPU);
* a media file's bytes (:class:`~avssl.data.decode.video_torchcodec.EncodedVideo`, the
  ``torchcodec`` backend): each video decoded by torchcodec on the device (NVDEC on CUDA).

The collate function joins a batch's payloads (``join``); Lightning's transfer leaves them in host
memory (plain objects, not tensors), where both decoders read their input, so no CUDA context is
ever made in a forked worker. After the transfer, the batch's consumer calls :func:`decode_frames`
(in its ``on_after_batch_transfer``): the frames are decoded on the batch's device, resized to
the clip's short side where stored at another, and zero-padded into the batch layout of
:mod:`avssl.data.dataset` (``video`` ``[B, N, T, H, W, 3]``; ``extent`` was set by the collate
function). A video whose frames do not decode is dropped from the batch and counted in
``num_failed``; windows past a media file's last frame count in ``num_truncated_video``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F

ENCODED_KEY = "frames"  # the sample / batch key of encoded frames (``video`` once decoded)


class Decoded(NamedTuple):
    """What a payload's ``decode`` gives: every frame (uint8 ``[3, h, w]`` at its video's
    ``stored`` size, videos one after another, clip-major; ``None`` for a video that failed), the
    videos that failed, and how many videos had windows past their last frame."""

    frames: list[torch.Tensor | None]
    failed: set[int]
    truncated: int = 0


class Encoded(Protocol):
    """The frames of ``len(sizes)`` videos' ``clips = (N, T)`` frames each, still encoded: ``stored``
    is each video's ``(H, W)`` as it decodes, ``sizes`` its ``(H, W)`` at the clip's short side."""

    clips: tuple[int, int]
    stored: list[tuple[int, int]]
    sizes: list[tuple[int, int]]

    def __len__(self) -> int: ...

    def decode(self, device: torch.device) -> Decoded: ...


def join(parts: list[Encoded]) -> Encoded:
    """One payload of a batch's samples (all of one kind)."""
    return type(parts[0]).join(parts)


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
    encoded: Encoded | None = batch.get(ENCODED_KEY)
    if encoded is None:
        return batch
    device = batch["extent"].device
    images, failed, truncated = encoded.decode(device)
    n, t = encoded.clips
    per_video = n * t
    keep = [i for i in range(len(encoded)) if i not in failed]
    out = {k: v for k, v in batch.items() if k != ENCODED_KEY}
    if truncated and "num_truncated_video" in out:
        out["num_truncated_video"] = out["num_truncated_video"] + truncated
    if failed:
        out = _drop(out, len(encoded), keep, device)
        out["num_failed"] = out["num_failed"] + len(failed)
        if not keep:
            return {"num_failed": out["num_failed"]}
    sizes = [encoded.sizes[i] for i in keep]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    video = torch.zeros((len(keep), n, t, height, width, 3), dtype=torch.uint8, device=device)
    groups: dict[tuple, list[int]] = defaultdict(list)  # videos of one decoded and output size are resized as one stack
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
