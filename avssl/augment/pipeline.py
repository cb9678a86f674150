"""Composition of the augmentations into the views the models see.

:class:`AVTransform` turns a decoded batch (uint8 video ``[B, N, T, H, W, 3]`` padded to the
batch's largest frame with each video's valid ``extent``, waveforms ``[B, N, S]``; see
:mod:`avssl.data.dataset`) into model inputs on the batch's device:

* ``video``: float ``[B, N, 3, T, h, w]``, normalised;
* ``spec``: float ``[B, N, 1, n_mels, frames]`` log-mel spectrograms.

Its input is decoded: frames that travel encoded are decoded before, once, by the batch's
consumer (:class:`avssl.data.batch.ViewsAfterTransfer`).

Training views: per clip, a random resized crop of the whole frame + horizontal flip (one box for
all frames of a clip, independent between clips), colour jitter / grayscale / blur, the ordered
temporal augmentations on the chosen streams (composed into one plan per stream and applied
once) and normalisation; audio: pitch shift and coloured noise, each before or after the temporal
augmentations (Table 1), then log-mel. (RE moves frames in time and the crop is the same on
every frame, so the two commute.) Drawing the random parameters (:meth:`AVTransform.sample`) and
applying them (:meth:`AVTransform.apply`) are separate, so a test can replay parameters.

Evaluation views: square crops of each frame's short side at fixed positions along its long side
(left / centre / right, or top / centre / bottom for portrait video), no random augmentation.
Crop boxes always lie inside a frame's valid extent, so the padding that lets frames of different
aspect ratios share a batch never enters a view and nothing is stretched to a common shape.

All randomness comes from the ``torch.Generator`` passed in; nothing loops over samples. On
CPU the video is processed in chunks of ``chunk_size`` clips since full-batch float
intermediates are memory-bound there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from avssl.augment.audio import AudioAugConfig, AudioAugment, LogMel, SpectrogramConfig
from avssl.augment.functional import crop_flip_resize, normalise_, select_frames, view_boxes
from avssl.augment.temporal import TemporalAug, TimePlan
from avssl.augment.video import ColorConfig, color_augment, sample_resized_crop
from avssl.errors import ConfigError

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings; defaults are the paper's best (RE, alpha 0.75, both streams).

    Args:
        crop_size: output side of the (square) video crops.
        crop_scale: area fraction range of the random resized crop.
        crop_ratio: aspect ratio range of the random resized crop.
        flip_p: probability of a horizontal flip.
        color: colour jitter, grayscale and Gaussian blur (SimCLR's defaults).
        audio: pitch shift and coloured noise, each before or after the temporal augmentations.
        temporal: ordered temporal augmentations; an empty list is the paper's control.
        aligned: share the temporal augmentations' parameters between the audio and the video of
            a clip (FD / TM / TS: strength and relative location; RE: strength), section 3.3.2.
        mean: per-channel mean of the video normalisation.
        std: per-channel standard deviation of the video normalisation.
        eval_crop_size: side of the deterministic evaluation crops (``None``: ``crop_size``); the
            paper tests on 256 x 256 crops of clips decoded at a short side of 256.
        chunk_size: clips per chunk for the video ops on CPU (ignored on GPU).
    """

    crop_size: int = 112
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    color: ColorConfig = ColorConfig()
    audio: AudioAugConfig = AudioAugConfig()
    temporal: list[TemporalAug] = field(default_factory=lambda: [TemporalAug("RE", 0.75, 1.0, "both")])
    aligned: bool = False
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    eval_crop_size: int | None = None
    chunk_size: int = 8

    def __post_init__(self) -> None:
        if self.crop_size < 1:
            raise ConfigError(f"data.augment.crop_size must be >= 1, got {self.crop_size}")
        if self.eval_crop_size is not None and self.eval_crop_size < 1:
            raise ConfigError(f"data.augment.eval_crop_size must be >= 1, got {self.eval_crop_size}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"data.augment.crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if not 0.0 <= self.flip_p <= 1.0:
            raise ConfigError(f"data.augment.flip_p must be in [0, 1], got {self.flip_p}")
        # YAML gives dicts; accept them so configs can list {name, alpha, p, streams}.
        temporal = [t if isinstance(t, TemporalAug) else TemporalAug(**t) for t in self.temporal]
        object.__setattr__(self, "temporal", temporal)
        fills = {(t.mask_fill, t.mask_value) for t in temporal if t.name == "TM"}
        if len(fills) > 1:
            raise ConfigError(f"data.augment.temporal: all TM entries must use one mask_fill / mask_value, got {sorted(fills)}")


@dataclass
class ViewParams:
    """The random parameters of one batch's training views (``M = B * N`` clips), drawn by
    :meth:`AVTransform.sample` and applied by :meth:`AVTransform.apply`.

    Attributes:
        boxes: ``[M, 4]`` crop boxes ``(x0, y0, w, h)`` in pixels, inside each frame's extent.
        flip: ``[M]`` horizontal flips.
        color: colour jitter / grayscale / blur parameters (``None`` when every op is off).
        audio: pitch-shift and coloured-noise parameters (:meth:`AudioAugment.sample`).
        temporal: per configured temporal augmentation, its parameters for each stream
            (``{"audio": ..., "video": ...}``; the same dict for both when aligned).
        noise_seed: seeds the fills drawn while applying (TM noise, coloured noise), so
            :meth:`AVTransform.apply` is a deterministic function of the batch and the parameters.
    """

    boxes: torch.Tensor
    flip: torch.Tensor
    color: dict[str, torch.Tensor] | None
    audio: dict[str, torch.Tensor]
    temporal: list[dict[str, dict[str, torch.Tensor]]]
    noise_seed: int


class AVTransform(nn.Module):
    """Decoded batch -> model inputs (training or evaluation views), on the batch's device."""

    def __init__(self, sample_rate: int, augment: AugmentConfig = AugmentConfig(), spectrogram: SpectrogramConfig = SpectrogramConfig()):
        super().__init__()
        self.cfg = augment
        self.logmel = LogMel(sample_rate, spectrogram, chunk_size=augment.chunk_size)
        self.audio_aug = AudioAugment(sample_rate, augment.audio)

    @property
    def eval_crop_size(self) -> int:
        return self.cfg.eval_crop_size or self.cfg.crop_size

    # ------------------------------------------------------------------ training views
    def train_views(self, batch: dict, generator: torch.Generator, keep_wave: bool = False) -> dict:
        """Randomly augmented views: :meth:`apply` of parameters drawn by :meth:`sample`."""
        return self.apply(batch, self.sample(batch, generator), keep_wave=keep_wave)

    def sample(self, batch: dict, generator: torch.Generator) -> ViewParams:
        """Draw every random parameter of the batch's training views from ``generator`` (device
        draws) and a NumPy generator derived from its seed (pitch steps and the fill seed: host
        values that pick code paths, drawn on the host so nothing is read back from the device)."""
        first = batch["video"] if "video" in batch else batch["audio"]
        b, n = first.shape[:2]
        m, device, cfg = b * n, first.device, self.cfg
        # audio-only data: crop boxes are still drawn (on a unit frame), so the draws that follow
        # are the same whichever streams a batch holds
        extent = clip_extent(batch) if "video" in batch else torch.ones(m, 2, dtype=torch.long, device=device)
        boxes = sample_resized_crop(extent, cfg.crop_scale, cfg.crop_ratio, generator)
        flip = torch.rand(m, generator=generator, device=device) < cfg.flip_p
        color = cfg.color.sample(m, generator, device)  # drawn either way: one stream of randomness
        host = np.random.default_rng(generator.initial_seed() ^ 0x5DEECE66D)
        audio = self.audio_aug.sample(m, generator, host, device)
        temporal = []
        for aug in cfg.temporal:
            audio_params = aug.sample_params(m, generator, device)
            video_params = aug.sample_params(m, generator, device)  # drawn either way: one stream of randomness
            temporal.append({"audio": audio_params, "video": audio_params if cfg.aligned else video_params})
        noise_seed = int(host.integers(2**62))
        return ViewParams(boxes, flip, color if cfg.color.active else None, audio, temporal, noise_seed)

    def temporal_plans(self, params: ViewParams, frames: int, samples: int) -> dict[str, TimePlan]:
        """The configured temporal augmentations at ``params``, composed in order into one
        :class:`TimePlan` per stream (``{"audio": ..., "video": ...}``)."""
        m, device = params.flip.shape[0], params.flip.device
        plans = {"audio": TimePlan.identity(m, samples, device), "video": TimePlan.identity(m, frames, device)}
        for aug, per_stream in zip(self.cfg.temporal, params.temporal):
            for stream in plans:
                if aug.applies_to(stream):
                    plans[stream] = aug.apply_to_plan(plans[stream], per_stream[stream])
        return plans

    def apply(self, batch: dict, params: ViewParams, keep_wave: bool = False) -> dict:
        """The views of ``batch`` at ``params``; returns a new dict with ``video`` and ``spec``
        replaced (and the augmented waveforms as ``wave`` ``[B, N, S]`` when ``keep_wave``, for
        previews). Per clip: crop + flip, colour, the temporal plan of each stream, normalisation;
        audio: pitch shift / coloured noise before or after the temporal plan, then log-mel."""
        video, audio = batch.get("video"), batch.get("audio")  # single-stream data holds one of them
        first = video if video is not None else audio
        b, n = first.shape[:2]
        t = video.shape[2] if video is not None else 1
        m, samples = b * n, audio.shape[-1] if audio is not None else 1
        plans = self.temporal_plans(params, t, samples)
        fills = torch.Generator(device=first.device).manual_seed(params.noise_seed)
        mask = next((a for a in self.cfg.temporal if a.name == "TM"), None)
        views = spec = wave = None
        if video is not None:
            clips = select_frames(video.reshape(m, *video.shape[2:]), plans["video"].src)  # uint8 [M, T, H, W, 3]
            views = self._video(clips, params.boxes, params.flip, clip_extent(batch), plans["video"], mask, fills, params.color)
        if audio is not None:
            wave = self.audio_aug.apply(audio.reshape(m, samples), params.audio, "before", fills)
            wave = self._audio(wave, plans["audio"], mask, fills)
            wave = self.audio_aug.apply(wave, params.audio, "after", fills)
            spec = self.logmel(wave)
        out = self._pack(batch, views, spec, b, n)
        if keep_wave and wave is not None:
            out["wave"] = wave.view(b, n, samples)
        return out

    # ------------------------------------------------------------------ evaluation views
    def eval_views(self, batch: dict, positions: Sequence[float] = (0.5,)) -> dict:
        """Deterministic views: for every clip, square crops of the frame's short side at
        ``positions`` along its long side (0 = left / top, 0.5 = centre, 1 = right / bottom; see
        :func:`~avssl.augment.functional.view_boxes`), resized to ``eval_crop_size``. With ``K``
        positions the view axis holds ``N * K`` views, clip-major; each view's spectrogram is its
        clip's."""
        k = len(positions)
        b, n = (batch["video"] if "video" in batch else batch["audio"]).shape[:2]
        views = spec = None
        if "video" in batch:  # single-stream data holds only one of the streams
            video = batch["video"]
            side = self.eval_crop_size
            extent = clip_extent(batch).repeat_interleave(k, dim=0)
            pos = torch.cat([torch.full((1,), float(p), device=video.device) for p in positions]).repeat(b * n)  # built on the device
            boxes = view_boxes(extent, (side, side), pos)
            flip = torch.zeros(b * n * k, dtype=torch.bool, device=video.device)
            clips = video.reshape(b * n, *video.shape[2:]).repeat_interleave(k, dim=0)
            views = self._video(clips, boxes, flip, extent, side=side)
        if "audio" in batch:
            spec = self.logmel(batch["audio"].reshape(b * n, -1)).repeat_interleave(k, dim=0)
        return self._pack(batch, views, spec, b, n * k)

    # ------------------------------------------------------------------ helpers
    def _audio(self, wave: torch.Tensor, plan: TimePlan, mask: TemporalAug | None, generator: torch.Generator) -> torch.Tensor:
        """Apply a time plan to waveforms ``[M, S]`` (TM noise: std = the clip's RMS before the
        temporal augmentations)."""
        out = wave.gather(1, plan.src)
        if plan.gain is not None:
            out = out * plan.gain
        if plan.fill_gain is not None:
            rms = wave.square().mean(1, keepdim=True).sqrt()
            shape = (wave.shape[0], plan.fills * plan.length)
            fill = mask.fill(shape, lambda noise: noise.gather(1, plan.fill_src), generator, wave.device, std=rms)
            out = out + plan.fill_gain * fill
        return out

    def _video(
        self,
        clips: torch.Tensor,
        boxes: torch.Tensor,
        flip: torch.Tensor,
        extent: torch.Tensor,
        plan: TimePlan | None = None,
        mask: TemporalAug | None = None,
        generator: torch.Generator | None = None,
        color: dict[str, torch.Tensor] | None = None,
        side: int | None = None,
    ) -> torch.Tensor:
        """uint8 ``[M, T, H, W, 3]`` -> normalised float ``[M, 3, T, h, w]`` (the model layout),
        ``h = w = side`` (default ``crop_size``).

        uint8 until the crop; the crop reads channels-last frames without a layout copy; colour
        augmentation, the plan's per-frame gains and fill (FD, TM) and the normalisation act on
        the (smaller) cropped frames, in chunks of ``chunk_size`` clips on CPU."""
        side = side or self.cfg.crop_size
        size = (side, side)
        step = clips.shape[0] if clips.is_cuda else max(1, self.cfg.chunk_size)
        kernel = self.blur_kernel_size
        m, t = clips.shape[:2]
        out = torch.empty((m, 3, t, *size), device=clips.device)  # filled chunk by chunk: no concatenation copy
        for i in range(0, m, step):
            part = slice(i, i + step)
            frames = clips[part].permute(0, 1, 4, 2, 3).float()  # [m, T, 3, H, W], channels-last strides
            cropped = crop_flip_resize(frames, boxes[part], flip[part], size, extent[part]).mul_(1 / 255)  # [m, T, 3, h, w] in [0, 1]
            if color is not None:
                cropped = color_augment(cropped, {k: v[part] for k, v in color.items()}, kernel)
            if plan is not None and plan.gain is not None:
                cropped.mul_(plan.gain[part, :, None, None, None])
            if plan is not None and plan.fill_gain is not None:  # TM noise: intensity, mean 0.5 and std 0.25
                shape = (cropped.shape[0], plan.fills * t, *cropped.shape[2:])
                pick = lambda noise, src=plan.fill_src[part]: select_frames(noise, src)  # noqa: E731
                fill = mask.fill(shape, pick, generator, cropped.device, mean=0.5, std=0.25)
                cropped.add_(plan.fill_gain[part, :, None, None, None] * fill)
            out[part] = normalise_(cropped, self.cfg.mean, self.cfg.std).transpose(1, 2)
        return out  # [M, 3, T, h, w]

    @property
    def blur_kernel_size(self) -> int:
        """Odd kernel of ``blur_kernel_fraction`` of the crop side (SimCLR: 10 %)."""
        k = int(round(self.cfg.crop_size * self.cfg.color.blur_kernel_fraction))
        return k + 1 if k % 2 == 0 else k

    @staticmethod
    def _pack(batch: dict, views: torch.Tensor | None, spec: torch.Tensor | None, b: int, n: int) -> dict:
        """The batch with ``video`` / ``audio`` replaced by the views ``[B, N, ...]`` (a stream
        the batch does not hold stays absent)."""
        out = {k: v for k, v in batch.items() if k not in ("video", "audio")}
        if views is not None:
            out["video"] = views.view(b, n, *views.shape[1:])
        if spec is not None:
            out["spec"] = spec.view(b, n, *spec.shape[1:])
        return out


def clip_extent(batch: dict) -> torch.Tensor:
    """``[B * N, 2]`` valid ``(height, width)`` of every clip's frames: the batch's ``extent``
    (per video, see :func:`avssl.data.batch.collate`) or, without one, the whole frame."""
    video = batch["video"]
    b, n, height, width = video.shape[0], video.shape[1], video.shape[3], video.shape[4]
    extent = batch.get("extent")
    if extent is None:
        return torch.stack([torch.full((b * n,), height, device=video.device), torch.full((b * n,), width, device=video.device)], 1)
    return extent.to(video.device).repeat_interleave(n, dim=0)
