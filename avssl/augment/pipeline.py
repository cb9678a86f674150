"""Composition of the augmentations into the views the models see (SPEC 2).

:class:`AVTransform` turns a decoded batch (uint8 video ``[B, N, T, H, W, 3]``, waveforms
``[B, N, S]``, see :mod:`avssl.data.dataset`) into model inputs on the batch's device:

* ``video``: float ``[B, N, 3, T, h, w]``, normalised;
* ``spec``: float ``[B, N, 1, n_mels, frames]`` log-mel spectrograms.

Training views: per clip, a random resized crop + horizontal flip (one box for all frames of a
clip, independent between clips), colour jitter / grayscale / blur, the ordered temporal
augmentations on the chosen streams (composed into one plan per stream and applied once) and
normalisation; audio: pitch shift and coloured noise, each before or after the temporal
augmentations (Table 1), then log-mel. (RE moves frames in time and the crop is the same on every frame,
so the two commute.) Evaluation views:
a centred crop (or one at a given position along the long side), no random augmentation.

All randomness comes from the ``torch.Generator`` passed in; nothing loops over samples. On
CPU the video is processed in chunks of ``chunk_size`` clips since full-batch float
intermediates are memory-bound there.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from avssl.augment.audio import AudioAugConfig, AudioAugment, LogMel, SpectrogramConfig
from avssl.augment.functional import centre_boxes, crop_flip_resize, normalise_, select_frames
from avssl.augment.temporal import TemporalAug, TimePlan
from avssl.augment.video import ColorConfig, color_augment, sample_flip, sample_resized_crop
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
        mean, std: per-channel video normalisation.
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
            raise ConfigError(f"augment.crop_size must be >= 1, got {self.crop_size}")
        if self.eval_crop_size is not None and self.eval_crop_size < 1:
            raise ConfigError(f"augment.eval_crop_size must be >= 1, got {self.eval_crop_size}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"augment.crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if not 0.0 <= self.flip_p <= 1.0:
            raise ConfigError(f"augment.flip_p must be in [0, 1], got {self.flip_p}")
        # YAML gives dicts; accept them so configs can list {name, alpha, p, streams}.
        temporal = [t if isinstance(t, TemporalAug) else TemporalAug(**t) for t in self.temporal]
        object.__setattr__(self, "temporal", temporal)
        fills = {(t.mask_fill, t.mask_value) for t in temporal if t.name == "TM"}
        if len(fills) > 1:
            raise ConfigError(f"augment.temporal: all TM entries must use one mask_fill / mask_value, got {sorted(fills)}")


class AVTransform(nn.Module):
    """Decoded batch -> model inputs (training or evaluation views), on the batch's device."""

    def __init__(self, sample_rate: int, augment: AugmentConfig = AugmentConfig(), spectrogram: SpectrogramConfig = SpectrogramConfig()):
        super().__init__()
        self.cfg = augment
        self.logmel = LogMel(sample_rate, spectrogram, chunk_size=augment.chunk_size)
        self.audio_aug = AudioAugment(sample_rate, augment.audio)

    def domain_only(self) -> AVTransform:
        """This transform without the temporal augmentations (the linear probe's training views:
        the paper trains the classifier with domain-specific augmentations only). Shares the
        log-mel and audio modules."""
        other = copy.copy(self)
        other.cfg = dataclasses.replace(self.cfg, temporal=[])
        return other

    # ------------------------------------------------------------------ public
    def train_views(self, batch: dict, generator: torch.Generator, keep_wave: bool = False) -> dict:
        """Randomly augmented views; returns a new dict with ``video`` and ``spec`` replaced
        (and the augmented waveforms as ``wave`` ``[B, N, S]`` when ``keep_wave``, for previews)."""
        video, audio = batch["video"], batch["audio"]
        b, n, t = video.shape[:3]
        m, (height, width), samples = b * n, video.shape[3:5], audio.shape[-1]
        device, cfg = video.device, self.cfg
        boxes = sample_resized_crop(m, height, width, cfg.crop_scale, cfg.crop_ratio, generator, device)
        flip = sample_flip(m, cfg.flip_p, generator, device)
        color = cfg.color.sample(m, generator, device)  # drawn either way: one stream of randomness
        color = color if cfg.color.active else None
        # Pitch steps pick groups of clips: drawn on the host (no device sync), from the same seed.
        host = torch.Generator().manual_seed(generator.initial_seed() ^ 0x5DEECE66D)
        audio_params = self.audio_aug.sample(m, generator, host, device)
        plans = self.temporal_plans(m, t, samples, generator, device)
        mask = next((a for a in cfg.temporal if a.name == "TM"), None)
        clips = select_frames(video.reshape(m, *video.shape[2:]), plans["video"].src)  # uint8 [M, T, H, W, 3]
        views = self._video(clips, boxes, flip, plans["video"], mask, generator, color)
        wave = self.audio_aug.apply(audio.reshape(m, samples), audio_params, "before", generator)
        wave = self._audio(wave, plans["audio"], mask, generator)
        wave = self.audio_aug.apply(wave, audio_params, "after", generator)
        out = self._pack(batch, views, self.logmel(wave), b, n)
        if keep_wave:
            out["wave"] = wave.view(b, n, samples)
        return out

    def temporal_plans(self, m: int, frames: int, samples: int, generator: torch.Generator, device: torch.device) -> dict[str, TimePlan]:
        """The configured temporal augmentations of ``m`` clips, composed into one
        :class:`TimePlan` per stream (``{"audio": ..., "video": ...}``)."""
        plans = {"audio": TimePlan.identity(m, samples, device), "video": TimePlan.identity(m, frames, device)}
        for aug in self.cfg.temporal:
            audio_params = aug.sample_params(m, generator, device)
            video_params = aug.sample_params(m, generator, device)  # drawn either way: one stream of randomness
            params = {"audio": audio_params, "video": audio_params if self.cfg.aligned else video_params}
            for stream in plans:
                if aug.applies_to(stream):
                    plans[stream] = aug.apply_to_plan(plans[stream], params[stream])
        return plans

    def eval_views(self, batch: dict, positions: Sequence[float] = (0.5,)) -> dict:
        """Deterministic views: for every clip, square crops at ``positions`` along the long side
        (0 = left/top, 0.5 = centre, 1 = right/bottom), resized to ``eval_crop_size`` (default
        ``crop_size``). With ``K`` positions the view axis holds
        ``N * K`` views, clip-major; each view's spectrogram is its clip's."""
        video = batch["video"]
        b, n = video.shape[:2]
        k, (height, width) = len(positions), video.shape[3:5]
        m = b * n * k
        side = self.cfg.eval_crop_size or self.cfg.crop_size
        size = (side, side)
        pos = torch.as_tensor(positions, dtype=torch.float32).repeat(b * n)
        boxes = centre_boxes(m, height, width, size, pos, device=video.device)
        flip = torch.zeros(m, dtype=torch.bool, device=video.device)
        clips = video.reshape(b * n, *video.shape[2:]).repeat_interleave(k, dim=0)
        spec = self.logmel(batch["audio"].reshape(b * n, -1)).repeat_interleave(k, dim=0)
        return self._pack(batch, self._video(clips, boxes, flip, side=side), spec, b, n * k)

    # ------------------------------------------------------------------ helpers
    def _audio(self, wave: torch.Tensor, plan: TimePlan, mask: TemporalAug | None, generator: torch.Generator) -> torch.Tensor:
        """Apply a time plan to waveforms ``[M, S]`` (TM noise: std = the clip's RMS)."""
        out = wave.gather(1, plan.src)
        if plan.gain is not None:
            out = out * plan.gain
        if plan.fill_gain is not None:
            if mask.mask_fill == "noise":
                rms = wave.square().mean(1, keepdim=True).sqrt()
                fill = torch.randn(out.shape, generator=generator, device=out.device) * rms
            else:
                fill = mask.mask_value
            out = out + plan.fill_gain * fill
        return out

    def _video(
        self,
        clips: torch.Tensor,
        boxes: torch.Tensor,
        flip: torch.Tensor,
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
            cropped = crop_flip_resize(frames, boxes[part], flip[part], size).mul_(1 / 255)  # [m, T, 3, h, w] in [0, 1]
            if color is not None:
                cropped = color_augment(cropped, {k: v[part] for k, v in color.items()}, kernel)
            if plan is not None and plan.gain is not None:
                cropped.mul_(plan.gain[part, :, None, None, None])
            if plan is not None and plan.fill_gain is not None:
                if mask.mask_fill == "noise":
                    fill = torch.randn(cropped.shape, generator=generator, device=cropped.device).mul_(0.25).add_(0.5)
                else:
                    fill = mask.mask_value
                cropped.add_(plan.fill_gain[part, :, None, None, None] * fill)
            out[part] = normalise_(cropped, self.cfg.mean, self.cfg.std).transpose(1, 2)
        return out  # [M, 3, T, h, w]

    @property
    def blur_kernel_size(self) -> int:
        """Odd kernel of ``blur_kernel_fraction`` of the crop side (SimCLR: 10 %)."""
        k = int(round(self.cfg.crop_size * self.cfg.color.blur_kernel_fraction))
        return k + 1 if k % 2 == 0 else k

    @staticmethod
    def _pack(batch: dict, views: torch.Tensor, spec: torch.Tensor, b: int, n: int) -> dict:
        out = {k: v for k, v in batch.items() if k not in ("video", "audio")}
        out["video"] = views.view(b, n, *views.shape[1:])
        out["spec"] = spec.view(b, n, *spec.shape[1:])
        return out
