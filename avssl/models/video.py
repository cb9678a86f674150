"""3D ResNet video encoder in the SlowFast slow-pathway layout as modified by CVRL.

* stem: conv ``5x7x7``, spatial stride 2 (temporal stride ``stem_temporal_stride``, 1 by
  default: 8-frame inputs keep their 8 time steps), then ``1x3x3`` max-pool with spatial stride 2;
* res2..res5: basic blocks (ResNet-18: 2 per stage), temporal kernel 1 in res2/res3 and 3 in
  res4/res5 (on the first conv of each block), spatial stride 2 from res3 on, no temporal stride;
* global average pool -> ``[B, 8 * width]``.

Input ``[B, 3, T, H, W]`` (shape comments below use ``C`` for channels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

TEMPORAL_KERNELS = (1, 1, 3, 3)  # res2, res3, res4, res5 (CVRL / SlowFast slow path)


class BasicBlock3d(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, spatial_stride: int, temporal_kernel: int):
        super().__init__()
        kt = temporal_kernel
        self.conv1 = nn.Conv3d(c_in, c_out, (kt, 3, 3), (1, spatial_stride, spatial_stride), (kt // 2, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, (1, 3, 3), 1, (0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if spatial_stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv3d(c_in, c_out, 1, (1, spatial_stride, spatial_stride), bias=False), nn.BatchNorm3d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class VideoResNet3d(nn.Module):
    """CVRL slow-path 3D ResNet. ``layers=(2, 2, 2, 2), width=64`` is ResNet-18."""

    def __init__(self, *, width: int = 64, layers: Sequence[int] = (2, 2, 2, 2), stem_temporal_stride: int = 1):
        super().__init__()
        if len(layers) != 4 or min(layers) < 1 or width < 1:
            raise ValueError(f"video encoder: need 4 stages with >= 1 block and width >= 1, got layers={layers}, width={width}")
        self.stem = nn.Sequential(
            nn.Conv3d(3, width, (5, 7, 7), (stem_temporal_stride, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        stages, c_in = [], width
        for i, (blocks, kt) in enumerate(zip(layers, TEMPORAL_KERNELS)):
            c_out = width * 2**i
            stage = [
                BasicBlock3d(c_in if j == 0 else c_out, c_out, spatial_stride=2 if (i > 0 and j == 0) else 1, temporal_kernel=kt)
                for j in range(blocks)
            ]
            stages.append(nn.Sequential(*stage))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.out_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # [B, C, T, H', W']
        return x.mean(dim=(2, 3, 4))  # [B, C]
