"""A shard store's JPEG frames carried to the batch's device and decoded there
(``data.decode_on: device``; the mechanism: :mod:`avssl.data.encoded`).

A worker returns the bytes of the frames its clips show (:class:`EncodedFrames`), the collate
function joins a batch's into one buffer, and after the transfer the whole batch is decoded in one
:func:`torchvision.io.decode_jpeg` call on the batch's device (nvjpeg on CUDA, libjpeg-turbo on
the CPU). The bytes stay in host memory: nvjpeg reads its input from there.
"""

from __future__ import annotations

import torch
from torchvision.io import decode_jpeg

from avssl.data.encoded import Decoded


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

    def decode(self, device: torch.device) -> Decoded:
        """Every frame decoded in one batched call; when that fails (a damaged frame), video by
        video: the frames, and the videos that did not decode."""
        views = [self.data[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]
        try:
            return Decoded(decode_jpeg(views, device=device), set())
        except RuntimeError:
            per_video = self.clips[0] * self.clips[1]
            images: list[torch.Tensor | None] = []
            failed = set()
            for i in range(len(self)):
                try:
                    images += decode_jpeg(views[i * per_video : (i + 1) * per_video], device=device)
                except RuntimeError:
                    failed.add(i)
                    images += [None] * per_video
            return Decoded(images, failed)
