"""2D ResNet audio encoder on log-mel spectrograms, max-pooled over time (paper section 3.2).

Input ``[B, 1, n_mels, frames]``; the frequency axis is averaged and the time axis max-pooled
at the end, giving ``[B, 8 * width]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BasicBlock2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class AudioResNet2d(nn.Module):
    """2D ResNet over (mel, time). ``layers=(2, 2, 2, 2), width=64`` is ResNet-18."""

    def __init__(self, *, width: int = 64, layers: Sequence[int] = (2, 2, 2, 2)):
        super().__init__()
        if len(layers) != 4 or min(layers) < 1 or width < 1:
            raise ValueError(f"audio encoder: need 4 stages with >= 1 block and width >= 1, got layers={layers}, width={width}")
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        stages, c_in = [], width
        for i, blocks in enumerate(layers):
            c_out = width * 2**i
            stages.append(
                nn.Sequential(
                    *[BasicBlock2d(c_in if j == 0 else c_out, c_out, stride=2 if (i > 0 and j == 0) else 1) for j in range(blocks)]
                )
            )
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # [B, C, F', T']
        return x.mean(dim=2).amax(dim=2)  # mean over frequency, max over time -> [B, C]
