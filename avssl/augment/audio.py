"""Audio augmentations and the log-mel spectrogram, batched on the batch's device.

* :class:`LogMel`: the spectrogram the audio encoder sees.
* :class:`AudioAugment`: the domain-specific augmentations of the paper's Table 1 — pitch shift
  and coloured noise — each placed before or after the temporal augmentations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn
from torchaudio.functional import melscale_fbanks

from avssl.errors import ConfigError
from avssl.utils.device import to_device


@dataclass(frozen=True)
class SpectrogramConfig:
    """Log-mel spectrogram parameters (hop 128 by default, 256/64/32 in Table 4).

    ``mean`` / ``std``: the log-mel values are standardised as ``(x - mean) / std`` (defaults 0
    and 1: unchanged, the paper's input); a dataset's statistics, e.g. CAV-MAE's AudioSet
    constants -5.081 and 4.4849 (configs/cavmae.yaml).
    """

    n_fft: int = 1024
    hop_length: int = 128
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.hop_length < 1 or self.n_fft < 2 or self.n_mels < 1:
            raise ConfigError(f"data.spectrogram: n_fft, hop_length and n_mels must be positive, got {self}")
        if not self.std > 0:
            raise ConfigError(f"data.spectrogram.std must be > 0, got {self.std}")


class LogMel(nn.Module):
    """``[M, S]`` waveforms -> ``[M, 1, n_mels, frames]`` log-mel spectrograms.

    Equal to ``torchaudio.transforms.MelSpectrogram`` (Hann window, centred with reflection
    padding, power 2, HTK mel scale, no filter normalisation) followed by ``log(x + 1e-6)``, with
    the power computed as re^2 + im^2 (no square root and square) and the batch processed in chunks
    of ``chunk_size`` clips on CPU, where the full-batch STFT is memory-bound.
    """

    def __init__(self, sample_rate: int, config: SpectrogramConfig = SpectrogramConfig(), chunk_size: int = 16):
        super().__init__()
        if config.f_max is not None and config.f_max > sample_rate / 2:
            raise ConfigError(f"data.spectrogram.f_max={config.f_max} exceeds the Nyquist rate of {sample_rate} Hz audio")
        self.config = config
        self.n_fft, self.hop_length, self.chunk_size = config.n_fft, config.hop_length, chunk_size
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        fbanks = melscale_fbanks(
            config.n_fft // 2 + 1, config.f_min, config.f_max or sample_rate / 2, config.n_mels, sample_rate, norm=None, mel_scale="htk"
        )
        self.register_buffer("fbanks", fbanks.T.contiguous(), persistent=False)  # [n_mels, n_freq]

    def _one(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop_length, window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = torch.view_as_real(spec).square().sum(-1)  # [m, n_freq, frames]
        logmel = torch.log(torch.matmul(self.fbanks, power) + 1e-6)  # [m, n_mels, frames]
        if (self.config.mean, self.config.std) != (0.0, 1.0):
            logmel = (logmel - self.config.mean) / self.config.std
        return logmel

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        step = wave.shape[0] if wave.is_cuda else max(1, self.chunk_size)
        return torch.cat([self._one(chunk) for chunk in wave.split(step)]).unsqueeze(1)


# --------------------------------------------------------------------------- domain-specific
PLACEMENTS = ("before", "after")
NOISE_COLORS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f ** beta


@dataclass(frozen=True)
class AudioAugConfig:
    """Audio domain-specific augmentations (paper section 4.1, Table 1).

    Args:
        pitch_p: probability of a pitch shift per clip (0 disables it).
        pitch_semitones: range of the shift in whole semitones (clips are grouped by shift, so
            each distinct value costs one ``torchaudio.functional.pitch_shift`` call per batch).
        pitch_placement: ``before`` (the paper's choice) or ``after`` the temporal augmentations.
        noise_p: probability of added coloured noise per clip (0 disables it).
        noise_colors: colours drawn uniformly: ``white``, ``pink`` (-3 dB/octave), ``brown``
            (-6 dB/octave).
        noise_snr_db: signal-to-noise ratio range in dB.
        noise_placement: ``before`` or ``after`` (the paper's choice for noise) the temporal
            augmentations.
    """

    pitch_p: float = 0.5
    pitch_semitones: tuple[int, int] = (-3, 3)
    pitch_placement: str = "before"
    noise_p: float = 0.0
    noise_colors: tuple[str, ...] = ("white", "pink", "brown")
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    noise_placement: str = "after"

    def __post_init__(self) -> None:
        for name in ("pitch_p", "noise_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.augment.audio.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("pitch_placement", "noise_placement"):
            if getattr(self, name) not in PLACEMENTS:
                raise ConfigError(f"data.augment.audio.{name} must be one of {PLACEMENTS}, got {getattr(self, name)!r}")
        unknown = [c for c in self.noise_colors if c not in NOISE_COLORS]
        if unknown or not self.noise_colors:
            raise ConfigError(
                f"data.augment.audio.noise_colors must be a non-empty subset of {sorted(NOISE_COLORS)}, got {self.noise_colors}"
            )
        if self.pitch_semitones[0] > self.pitch_semitones[1]:
            raise ConfigError(f"data.augment.audio.pitch_semitones must be (low, high), got {self.pitch_semitones}")


def overlap_add_istft(spec: torch.Tensor, n_fft: int, hop_length: int, window: torch.Tensor, length: int) -> torch.Tensor:
    """``torch.istft(spec, n_fft, hop_length, window=window, length=length)`` (centred, one-sided,
    not normalised) by inverse FFT and overlap-add with ``fold``, without ATen's window-overlap
    (NOLA) check, which reads a value back to the host (a device synchronisation per call). The
    squared-window envelope is clamped at ``1e-11``, the threshold of that check: for the Hann
    windows and hops used here it is far above it inside the output."""
    frames = torch.fft.irfft(spec, n=n_fft, dim=1) * window[None, :, None]  # [M, n_fft, frames]
    count = frames.shape[-1]
    total = n_fft + hop_length * (count - 1)
    fold = dict(output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop_length))
    signal = F.fold(frames, **fold)[:, 0, 0]  # [M, total]
    envelope = F.fold(window.square()[None, :, None].expand(1, n_fft, count), **fold)[0, 0, 0]
    start = n_fft // 2
    signal = (signal / envelope.clamp(min=1e-11))[:, start : start + length]
    return F.pad(signal, (0, length - signal.shape[1])) if signal.shape[1] < length else signal


def pitch_shift(wave: torch.Tensor, sample_rate: int, steps: torch.Tensor, n_fft: int = 512, hop_length: int = 128) -> torch.Tensor:
    """Shift each clip of ``wave`` ``[M, S]`` by ``steps[m]`` semitones (``steps`` on the host: a
    NumPy array or a CPU tensor).

    As ``torchaudio.functional.pitch_shift``: a phase-vocoder time stretch by
    ``2 ** (-steps / 12)`` (``torchaudio.functional.phase_vocoder``) and a resample back to ``S``
    samples — here by linear interpolation, since torchaudio's polyphase resample between the
    two rates (e.g. 16000 -> 19027 Hz) took seconds per batch. Clips sharing a shift are processed
    together: a loop over the distinct values (a handful), not over samples; 0 is left untouched.
    """
    m, length = wave.shape
    out = wave.clone()
    window = torch.hann_window(n_fft, device=wave.device)
    n_freq = n_fft // 2 + 1
    phase_advance = torch.linspace(0, math.pi * hop_length, n_freq, device=wave.device)[:, None]
    host_steps = np.asarray(steps)  # grouped on the host: nothing is read back from the device
    for value in np.unique(host_steps).tolist():
        if value == 0:
            continue
        index = to_device(torch.from_numpy(np.flatnonzero(host_steps == value)), wave.device)
        rate = 2.0 ** (-value / 12)
        spec = torch.stft(wave.index_select(0, index), n_fft, hop_length, window=window, return_complex=True)
        stretched = AF.phase_vocoder(spec, rate, phase_advance)
        slow = overlap_add_istft(stretched, n_fft, hop_length, window, int(round(length / rate)))
        shifted = F.interpolate(slow[:, None], size=length, mode="linear", align_corners=False)[:, 0]
        out.index_copy_(0, index, shifted)
    return out


def coloured_noise(shape: tuple[int, int], beta: torch.Tensor, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Unit-RMS noise ``[M, S]`` with power spectrum ~ ``1 / f ** beta[m]`` (DC removed)."""
    m, n = shape
    white = torch.randn(m, n, generator=generator, device=device)
    spectrum = torch.fft.rfft(white)
    freq = torch.arange(spectrum.shape[1], device=device, dtype=torch.float32)
    scale = freq.clamp(min=1)[None, :].pow(-beta[:, None] / 2)
    scale[:, 0] = 0.0
    noise = torch.fft.irfft(spectrum * scale, n=n)
    return noise / noise.square().mean(1, keepdim=True).sqrt().clamp(min=1e-12)


class AudioAugment(nn.Module):
    """Pitch shift and coloured noise on waveforms ``[M, S]``, with their placements."""

    def __init__(self, sample_rate: int, config: AudioAugConfig = AudioAugConfig()):
        super().__init__()
        self.sample_rate, self.cfg = sample_rate, config
        # the noise exponents, moved with the module (not copied from a list every batch)
        self.register_buffer("betas", torch.tensor([NOISE_COLORS[c] for c in config.noise_colors]), persistent=False)

    def sample(self, m: int, generator: torch.Generator, host: np.random.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """Per-clip parameters; pitch steps are drawn on the host with NumPy (they pick the
        groups of :func:`pitch_shift`; a NumPy array)."""
        cfg = self.cfg
        lo, hi = cfg.pitch_semitones
        steps = host.integers(lo, hi + 1, m)
        steps = np.where(host.random(m) < cfg.pitch_p, steps, 0)
        beta = self.betas[torch.randint(len(self.betas), (m,), generator=generator, device=device)]
        snr = torch.empty(m, device=device).uniform_(*cfg.noise_snr_db, generator=generator)
        noisy = torch.rand(m, generator=generator, device=device) < cfg.noise_p
        return {"steps": steps, "beta": beta, "snr_db": snr, "noisy": noisy}

    def apply(self, wave: torch.Tensor, params: dict[str, torch.Tensor], placement: str, generator: torch.Generator) -> torch.Tensor:
        """The ops whose placement is ``placement`` (``before`` / ``after`` the temporal ones)."""
        cfg = self.cfg
        if cfg.pitch_p > 0 and cfg.pitch_placement == placement:
            wave = pitch_shift(wave, self.sample_rate, params["steps"])
        if cfg.noise_p > 0 and cfg.noise_placement == placement:
            noise = coloured_noise(tuple(wave.shape), params["beta"], generator, wave.device)
            rms = wave.square().mean(1, keepdim=True).sqrt()
            gain = rms / 10 ** (params["snr_db"][:, None] / 20)
            wave = wave + torch.where(params["noisy"][:, None], gain * noise, 0.0)
        return wave
