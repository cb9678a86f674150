"""The batch layout, the collate function that makes it, and the one way a batch's consumer
turns it into views after the transfer (:class:`ViewsAfterTransfer`).

Sample layout (the one layout used everywhere, see also :mod:`avssl.data`):

================  ===================================  =====================================
key               sample                               batch (after ``collate``)
================  ===================================  =====================================
``video``         uint8 ``[N, T, H, W, 3]``             uint8 ``[B, N, T, H, W, 3]``, padded
``extent``        int64 ``[2]`` frame ``(H, W)``         int64 ``[B, 2]`` each video's valid ``(H, W)``
``audio``         float32 ``[N, S]``                    float32 ``[B, N, S]``
``label``         int (-1 unknown)                      int64 ``[B]``
``index``         int (row in the index)                int64 ``[B]``
``start``         float64 ``[N]`` clip starts (s)       float64 ``[B, N]``
``video_id``      str                                   list of ``B`` str
(counters)        ``num_failed`` + the flags below      int64 scalars ``num_failed``,
                                                        ``num_silent_audio``, ``num_padded_audio``,
                                                        ``num_nonfinite_audio``, ``num_short_video``,
                                                        ``num_truncated_video``
================  ===================================  =====================================

``N`` is the number of clips per video (2 positives in pre-training, ``eval_clips`` in
evaluation), ``T`` frames per clip, ``S = round(clip_seconds * sample_rate)``. Frames keep their
aspect ratio: the decoder resizes the short side to ``short_side`` and crops nothing, so a video's
``H x W`` is its own (16:9, 4:3, portrait, ...). A batch holds videos of different shapes by
zero-padding every frame at the bottom and right to the batch's largest ``H`` and ``W``;
``extent`` says which part of each video's frames is real, and the augmentations draw their crop
boxes inside it (:mod:`avssl.augment.pipeline`), so no content is discarded before augmentation
and nothing is stretched.

Frames that travel still encoded (``data.decode_on: device``) arrive under ``frames`` instead of
``video`` and are decoded on the batch's device after the transfer, once, by
:func:`decoded_on_device` (:mod:`avssl.data.encoded`).
"""

from __future__ import annotations

from typing import Any

import torch

from avssl.data.encoded import ENCODED_KEY, decode_frames, join

SAMPLE_FLAGS = ("silent_audio", "padded_audio", "nonfinite_audio", "short_video", "truncated_video")


def decoded(batch: dict) -> bool:
    """Whether any sample of a collated batch decoded (a batch of failures holds only counters)."""
    return "index" in batch


def collate(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack samples into the batch layout; ``num_failed`` counts samples that failed to decode.

    Frames of different sizes are zero-padded at the bottom and right to the largest height and
    width in the batch; ``extent`` ``[B, 2]`` keeps each video's own ``(H, W)``."""
    ok = [s for s in samples if s is not None]
    failed = len(samples) - len(ok) + sum(s.get("num_failed", 0) for s in ok)
    if not ok:
        return {"num_failed": torch.tensor(failed)}
    batch: dict[str, Any] = {}
    if ENCODED_KEY in ok[0]:  # decoded on the device after the transfer (decode_frames)
        batch[ENCODED_KEY] = join([s[ENCODED_KEY] for s in ok])
        batch["extent"] = torch.tensor(batch[ENCODED_KEY].sizes, dtype=torch.long)
    if "video" in ok[0]:
        extent = torch.tensor([s["video"].shape[-3:-1] for s in ok], dtype=torch.long)
        height, width = extent.max(0).values.tolist()
        first = ok[0]["video"]
        video = torch.zeros((len(ok), *first.shape[:-3], height, width, first.shape[-1]), dtype=first.dtype)
        for i, s in enumerate(ok):
            video[i, ..., : extent[i, 0], : extent[i, 1], :] = s["video"]
        batch.update(video=video, extent=extent)
    if "audio" in ok[0]:
        batch["audio"] = torch.stack([s["audio"] for s in ok])
    batch |= {
        "label": torch.tensor([s["label"] for s in ok], dtype=torch.long),
        "index": torch.tensor([s["index"] for s in ok], dtype=torch.long),
        "start": torch.stack([s["start"] for s in ok]),
        "video_id": [s["video_id"] for s in ok],
        "num_failed": torch.tensor(failed),
    }
    for flag in SAMPLE_FLAGS:
        batch[f"num_{flag}"] = torch.tensor(sum(bool(s.get(flag, False)) for s in ok))
    return batch


def decoded_on_device(batch: dict) -> dict | None:
    """``batch`` (on its device) ready for views: frames that arrive encoded decoded there (the
    one place they are); ``None`` when none of its samples decoded."""
    batch = decode_frames(batch)
    return batch if decoded(batch) else None


class ViewsAfterTransfer:
    """The hook of a LightningModule that consumes an :class:`~avssl.data.datamodule.AVDataModule`'s
    batches (a pre-training method, an evaluation): after the transfer, the batch's frames are
    decoded on its device (:func:`decoded_on_device`), a batch none of whose samples decoded goes
    on as it is (its counters only), and the others become the consumer's views
    (:meth:`make_views`)."""

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        ready = decoded_on_device(batch)
        return batch if ready is None else self.make_views(ready)

    def make_views(self, batch: dict) -> dict:
        """The model inputs of a decoded batch on its device (``video`` / ``spec`` views)."""
        raise NotImplementedError
