"""Pure batched ops with explicit per-sample parameters (no randomness, no Python loop over samples).

Conventions: a batch of ``M`` clips; waveforms are ``[M, S]``; frames are ``[M, T, C, H, W]``
(the decoded layout, permuted; the model's ``[M, C, T, H, W]`` is produced at the end of the
pipeline). Temporal augmentations that move samples in time (RE) are index maps ``[M, L]``
("output step t reads input step index[t]"): they compose by :func:`compose_indices` and are
applied once, to uint8 frames before the crop and to the waveform before the spectrogram.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resample_indices(length: int, strength: torch.Tensor) -> torch.Tensor:
    """Source indices ``[M, length]`` of the Resample (RE) augmentation.

    The time axis is down-sampled to ``L' = round(length * (1 - s))`` samples and up-sampled
    back to ``length`` by nearest neighbour (``F.interpolate(mode="nearest")`` index rule:
    ``src = floor(dst * in / out)``), so output ``j`` reads input
    ``floor(floor(j * L' / length) * length / L')``. ``s = 0`` is the identity; ``s = 0.5`` on 8
    frames keeps 4 distinct frames.
    """
    device = strength.device
    kept = torch.clamp(torch.round(length * (1.0 - strength)), min=1).to(torch.float64)[:, None]  # [M, 1]
    j = torch.arange(length, device=device, dtype=torch.float64)[None, :]  # [1, L]
    down = torch.floor(j * kept / length)  # index into the down-sampled signal
    src = torch.floor(down * length / kept)  # its source index in the input
    return src.clamp_(0, length - 1).long()


def crop_flip_resize(
    frames: torch.Tensor,
    boxes: torch.Tensor,
    flip: torch.Tensor,
    size: tuple[int, int],
    extent: torch.Tensor | None = None,
) -> torch.Tensor:
    """Crop a box per clip (same box on every frame), flip it horizontally where ``flip``, resize.

    Args:
        frames: float ``[M, T, C, H, W]`` (any strides where ``M, T`` merge into one dimension,
            e.g. a permuted channels-last uint8 decode converted to float).
        boxes: ``[M, 4]`` as ``(x0, y0, width, height)`` in pixels of the input frame.
        flip: bool ``[M]``.
        size: output ``(h, w)``.
        extent: ``[M, 2]`` valid ``(height, width)`` of each clip's frames when the batch is
            padded to a common size (see :func:`avssl.data.batch.collate`); ``None``: the whole
            frame is valid. Sampling positions are clamped to the valid pixel centres, so the
            padding never enters a view.

    Returns ``[M, T, C, h, w]``. Bilinear sampling at the output pixel centres (``grid_sample``,
    ``align_corners=False``): a box of the output's size on integer pixel offsets reproduces the
    input pixels exactly.
    """
    m, t, c, h_in, w_in = frames.shape
    h_out, w_out = size
    dtype, device = frames.dtype, frames.device
    x0, y0, bw, bh = boxes.to(device=device, dtype=dtype).unbind(1)
    if extent is None:
        valid_h, valid_w = torch.full_like(x0, h_in), torch.full_like(x0, w_in)
    else:
        valid_h, valid_w = extent.to(device=device, dtype=dtype).unbind(1)
    u = (torch.arange(w_out, device=device, dtype=dtype) + 0.5) / w_out  # output pixel centres, [0, 1]
    v = (torch.arange(h_out, device=device, dtype=dtype) + 0.5) / h_out
    u = torch.where(flip[:, None], 1 - u, u)  # [M, w]
    x = torch.minimum((x0[:, None] + bw[:, None] * u).clamp(min=0.5), valid_w[:, None] - 0.5)  # pixels
    y = torch.minimum((y0[:, None] + bh[:, None] * v).clamp(min=0.5), valid_h[:, None] - 0.5)  # [M, h]
    gx = (2 * x / w_in - 1)[:, None, :].expand(m, h_out, w_out)
    gy = (2 * y / h_in - 1)[:, :, None].expand(m, h_out, w_out)
    grid = torch.stack([gx, gy], dim=-1).repeat_interleave(t, dim=0)  # one grid per frame: [M * T, h, w, 2]
    out = F.grid_sample(frames.reshape(m * t, c, h_in, w_in), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.view(m, t, c, h_out, w_out)


def view_boxes(extent: torch.Tensor, size: tuple[int, int], positions: torch.Tensor) -> torch.Tensor:
    """Boxes ``[M, 4]`` of the largest ``size``-aspect crop of each frame (``extent`` ``[M, 2]``
    valid height and width), placed at ``positions`` ``[M]`` in [0, 1] along the frame's long side
    (0 = left / top, 0.5 = centre, 1 = right / bottom), on whole pixels.

    With a square ``size`` this is the test protocol's crop: a square of the short side, so the
    crops at 0, 0.5 and 1 differ on any non-square frame and together span a long side of up to
    three short sides (4:3, 16:9, 21:9; the full height of a portrait frame)."""
    extent = extent.float()
    height, width = extent.unbind(1)
    aspect = size[1] / size[0]
    bw = torch.minimum(width, height * aspect)
    bh = bw / aspect
    pos = positions.to(extent.device, torch.float32)
    x0 = torch.floor((width - bw) * pos + 0.5)
    y0 = torch.floor((height - bh) * pos + 0.5)
    return torch.stack([x0, y0, bw, bh], 1)


def normalise_(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], scale: float = 1.0) -> torch.Tensor:
    """In place: ``(frames * scale - mean) / std`` per channel of ``[M, T, C, H, W]`` frames.

    ``scale = 1 / 255`` maps uint8 values to [0, 1] in the same pass. The constants stay Python
    scalars (no host-to-device copy per batch): one pass when every channel shares them, else one
    per channel."""
    if len(set(mean)) == 1 and len(set(std)) == 1:
        return frames.mul_(scale / std[0]).sub_(mean[0] / std[0])
    for c, (m, s) in enumerate(zip(mean, std, strict=True)):
        frames[:, :, c].mul_(scale / s).sub_(m / s)
    return frames


def compose_indices(first: torch.Tensor, then: torch.Tensor) -> torch.Tensor:
    """Source indices of applying time map ``first`` and then ``then`` (both ``[M, L]``):
    ``y[t] = x[first[t]]``, ``z[t] = y[then[t]]`` gives ``z[t] = x[first[then[t]]]``."""
    return first.gather(1, then)


def select_frames(clips: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``out[m, t] = clips[m, index[m, t]]`` for contiguous ``clips`` ``[M, T, ...]``.

    One flat ``index_select`` over whole frames (no index tensor the size of the video); uint8
    frames are moved as 8-byte words (faster than byte-wise on CPU)."""
    m, t = index.shape
    rows = clips.reshape(m * clips.shape[1], -1)
    if rows.dtype == torch.uint8 and rows.shape[1] % 8 == 0 and rows.is_contiguous():
        rows = rows.view(torch.int64)
    flat = (torch.arange(m, device=index.device)[:, None] * clips.shape[1] + index).reshape(-1)
    return rows.index_select(0, flat).view(clips.dtype).view(m, t, *clips.shape[2:])
