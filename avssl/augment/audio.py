"""Audio augmentations and the log-mel spectrogram, batched on the batch's device."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchaudio.functional import melscale_fbanks


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
    """``[M, S]`` waveforms -> ``[M, 1, n_mels, frames]`` log-mel spectrograms.

    Equal to ``torchaudio.transforms.MelSpectrogram`` (Hann window, centred with reflection
    padding, power 2, HTK mel scale, no filter normalisation) followed by ``log(x + 1e-6)``, with
    the power computed as re^2 + im^2 (no square root and square) and the batch processed in chunks
    of ``chunk_size`` clips on CPU, where the full-batch STFT is memory-bound.
    """

    def __init__(self, sample_rate: int, config: SpectrogramConfig = SpectrogramConfig(), chunk_size: int = 16):
        super().__init__()
        if config.f_max is not None and config.f_max > sample_rate / 2:
            raise ValueError(f"spectrogram.f_max={config.f_max} exceeds the Nyquist rate of {sample_rate} Hz audio")
        self.n_fft, self.hop_length, self.chunk_size = config.n_fft, config.hop_length, chunk_size
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        fbanks = melscale_fbanks(
            config.n_fft // 2 + 1, config.f_min, config.f_max or sample_rate / 2, config.n_mels, sample_rate, norm=None, mel_scale="htk"
        )
        self.register_buffer("fbanks", fbanks.T.contiguous(), persistent=False)  # [n_mels, n_freq]

    def _one(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop_length, window=self.window, center=True, pad_mode="reflect", return_complex=True)
        power = torch.view_as_real(spec).square().sum(-1)  # [m, n_freq, frames]
        return torch.log(torch.matmul(self.fbanks, power) + 1e-6)  # [m, n_mels, frames]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        step = wave.shape[0] if wave.is_cuda else max(1, self.chunk_size)
        return torch.cat([self._one(chunk) for chunk in wave.split(step)]).unsqueeze(1)
