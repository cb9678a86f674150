"""Vision-transformer encoders for both streams, as AST / CAV-MAE patch spectrograms and frames.

* audio: the log-mel spectrogram ``[B, 1, n_mels, frames]`` cut into ``p x p`` patches (a
  ``Conv2d`` with stride ``p``; a remainder of mel bins or frames that does not fill a patch is
  left out), one token per patch;
* video: the frames ``[B, 3, T, H, W]`` cut into ``tubelet x p x p`` patches (``tubelet`` 1: each
  frame's patches are tokens of their own; 2: two frames per token, as VideoMAE);
* fixed sine-cosine positions: MAE's 2-D layout (the first half of the channels encodes the
  column, the second the row: the patch grid's time axis for audio, ``x`` for video) plus, for
  video, a 1-D sine-cosine of the tubelet's time index (zero at the first); a learned modality embedding
  (CAV-MAE's ``modality_a`` / ``modality_v``) on every token;
* pre-norm transformer blocks (timm's ``Block``: LayerNorm, multi-head self-attention with a
  biased ``qkv``, LayerNorm, GELU MLP of ``mlp_ratio x dim``), then a final LayerNorm; the
  representation is the mean of the final tokens (no class token).

Parameter names follow timm / CAV-MAE (``patch_embed.proj``, ``blocks.i.attn.qkv``,
``blocks.i.mlp.fc1``, ``norm``) so that MAE / ViT checkpoints map onto them by name
(:func:`avssl.models.init.load_vit_weights`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MODALITIES = ("audio", "video")


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """``[N]`` positions -> ``[N, dim]``: sines of the first ``dim / 2`` frequencies, then cosines
    (MAE's ``get_1d_sincos_pos_embed_from_grid``; frequencies ``10000 ** (-k / (dim / 2))``)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2))
    angles = positions.to(torch.float64)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(dim: int, rows: int, cols: int, device: torch.device | None = None) -> torch.Tensor:
    """``[rows * cols, dim]`` positions of a row-major patch grid, MAE's 2-D layout: the first
    ``dim / 2`` channels encode the column, the last ``dim / 2`` the row."""
    r, c = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, c.flatten()), sincos_1d(dim // 2, r.flatten())], dim=1)


def grid_positions(dim: int, grid: tuple[int, ...], device: torch.device | None = None) -> torch.Tensor:
    """``[N, dim]`` fixed positions of a row-major token grid: :func:`sincos_2d` of its last two
    axes, plus for a 3-D (video ``t, h, w``) grid :func:`sincos_1d` of the time index minus its
    value at time 0: the first tubelet (a one-frame input entirely) has exactly MAE's 2-D
    positions, those image MAE / CAV-MAE weights were trained with."""
    pos = sincos_2d(dim, *grid[-2:], device=device)
    if len(grid) == 3:
        t = sincos_1d(dim, torch.arange(grid[0], device=device))
        pos = ((t - t[:1])[:, None] + pos[None]).flatten(0, 1)
    return pos


class Attention(nn.Module):
    """Multi-head self-attention (``scaled_dot_product_attention``: flash / memory-efficient
    kernels on GPUs)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block. ``modal``: besides (``joint``) or instead of its own LayerNorms
    ``norm1`` / ``norm2``, one pair per modality (``norm1_a`` / ``norm2_a``, ``norm1_v`` /
    ``norm2_v``): CAV-MAE's shared block, whose attention and MLP both modalities share while
    each single-modality pass normalises with its own statistics. Only the norms a configuration
    uses exist (no parameter without a gradient under DDP)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, *, joint: bool = True, modal: bool = False):
        super().__init__()
        self.attn = Attention(dim, heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if joint:
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        if modal:
            self.norm1_a, self.norm2_a = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.norm1_v, self.norm2_v = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, modality: str | None = None) -> torch.Tensor:
        suffix = "" if modality is None else "_" + modality[0]  # "audio" -> norm1_a
        x = x + self.attn(getattr(self, "norm1" + suffix)(x))
        return x + self.mlp(getattr(self, "norm2" + suffix)(x))


def init_vit_(module: nn.Module) -> None:
    """CAV-MAE / MAE initialisation: Xavier-uniform linear layers (and patch projections, as a
    linear layer) with zero biases, unit LayerNorms, ``N(0, 0.02)`` modality embeddings and mask
    tokens."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.Conv3d):
            nn.init.xavier_uniform_(m.weight.view(m.weight.shape[0], -1))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for name, p in module.named_parameters():
        if name.endswith(("modality", "mask_token")):
            nn.init.normal_(p, std=0.02)


class ViTStream(nn.Module):
    """One stream's transformer: patch embedding, positions, modality embedding, ``depth``
    blocks, final LayerNorm; ``forward`` gives the mean of the final tokens ``[B, dim]``.

    Args:
        modality: ``audio`` (input ``[B, 1, n_mels, frames]``) or ``video`` (``[B, 3, T, H, W]``).
        dim: the transformer's width.
        depth: its blocks.
        heads: attention heads per block.
        patch_size: the patches' side ``p`` (spectrogram bins / pixels).
        tubelet: frames per video token (video only).
        mlp_ratio: hidden width of each block's MLP, as a multiple of ``dim``.
    """

    def __init__(self, modality: str, *, dim: int, depth: int, heads: int, patch_size: int, tubelet: int = 1, mlp_ratio: float = 4.0):
        super().__init__()
        self.modality_name = modality
        p = patch_size
        if modality == "audio":
            self.patch = (p, p)
            self.patch_embed = nn.Module()
            self.patch_embed.proj = nn.Conv2d(1, dim, p, p)
        else:
            self.patch = (tubelet, p, p)
            self.patch_embed = nn.Module()
            self.patch_embed.proj = nn.Conv3d(3, dim, self.patch, self.patch)
        self.dim, self.out_dim = dim, dim
        self.modality = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        init_vit_(self)

    def grid(self, x: torch.Tensor) -> tuple[int, ...]:
        """The token grid of input ``x``: ``(rows, cols)`` for audio (mel, time), ``(t, h, w)`` for video."""
        return tuple(s // p for s, p in zip(x.shape[2:], self.patch, strict=True))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> tokens ``[B, N, dim]`` with positions and the modality embedding, before the blocks."""
        grid = self.grid(x)
        if min(grid) < 1:
            raise ValueError(f"{self.modality_name} ViT: input {tuple(x.shape)} is smaller than one patch {self.patch}")
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        return tokens + grid_positions(self.dim, grid, x.device).to(tokens.dtype) + self.modality

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the stream's blocks on (visible) tokens ``[B, N, dim]``."""
        for block in self.blocks:
            tokens = block(tokens)
        return tokens

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final LayerNorm, mean over tokens: ``[B, N, dim] -> [B, dim]``."""
        return self.norm(tokens).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encode(self.embed(x)))

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> ``[B, N, prod(patch) * C]`` pixel / bin values of each token's patch, in token
        order (MAE's reconstruction targets; a remainder outside the patch grid is left out)."""
        grid, b, c = self.grid(x), x.shape[0], x.shape[1]
        x = x[(..., *(slice(0, g * p) for g, p in zip(grid, self.patch, strict=True)))]
        shape = [b, c]
        for g, p in zip(grid, self.patch, strict=True):
            shape += [g, p]
        x = x.reshape(shape)  # [B, C, g1, p1, g2, p2, ...]
        k = len(grid)
        order = [0, *range(2, 2 + 2 * k, 2), *range(3, 3 + 2 * k, 2), 1]  # B, grid..., patch..., C
        return x.permute(order).reshape(b, math.prod(grid), -1)


def random_masking(tokens: torch.Tensor, ratio: float, generator: torch.Generator | None = None):
    """Keep a random ``1 - ratio`` share of each sample's tokens, a different draw per sample
    (MAE / CAV-MAE's ``random_masking_unstructured``: argsort of uniform noise).

    Returns ``(visible [B, K, D], mask [B, N] (1 = masked, in the original order), restore [B, N])``
    where ``K = int(N * (1 - ratio))`` and ``restore`` puts the shuffled sequence back in order.
    """
    b, n, d = tokens.shape
    keep = int(n * (1 - ratio))
    noise = torch.rand(b, n, device=tokens.device, generator=generator)
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    visible = tokens.gather(1, shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, n, device=tokens.device, dtype=tokens.dtype)
    mask[:, :keep] = 0
    return visible, mask.gather(1, restore), restore
