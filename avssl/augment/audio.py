"""Audio augmentations and the log-mel spectrogram, batched on the batch's device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchaudio.transforms import MelSpectrogram


@dataclass(frozen=True)
class SpectrogramConfig:
    """Log-mel spectrogram parameters (SPEC 2; hop 128 by default, 256/64/32 in Table 4)."""

    n_fft: int = 1024
    hop_length: int = 128
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None

    def __post_init__(self) -> None:
        if self.hop_length < 1 or self.n_fft < 2 or self.n_mels < 1:
            raise ValueError(f"spectrogram: n_fft, hop_length and n_mels must be positive, got {self}")


class LogMel(nn.Module):
    """``[M, S]`` waveforms -> ``[M, 1, n_mels, frames]`` log-mel spectrograms."""

    def __init__(self, sample_rate: int, config: SpectrogramConfig = SpectrogramConfig()):
        super().__init__()
        if config.f_max is not None and config.f_max > sample_rate / 2:
            raise ValueError(f"spectrogram.f_max={config.f_max} exceeds the Nyquist rate of {sample_rate} Hz audio")
        self.mel = MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            f_min=config.f_min,
            f_max=config.f_max,
            power=2.0,
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(wave) + 1e-6).unsqueeze(1)
