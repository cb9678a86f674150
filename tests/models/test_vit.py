"""The ViT encoders: positions, patch order, masking, modality-specific and shared parameters."""

from __future__ import annotations

import math

import pytest
import torch

from avssl.errors import ConfigError
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.models.vit import ViTStream, random_masking, sincos_2d

TINY_VIT = {"encoder": "vit", "dim": 16, "depth": 1, "heads": 2, "patch_size": 4}


def mae_2d_reference(dim: int, rows: int, cols: int) -> list[list[float]]:
    """MAE's get_2d_sincos_pos_embed (no class token), one entry at a time: the first half of the
    channels from the column index, the second from the row index."""

    def one_d(d: int, pos: int) -> list[float]:
        omega = [1.0 / 10000 ** (k / (d / 2)) for k in range(d // 2)]
        return [math.sin(pos * w) for w in omega] + [math.cos(pos * w) for w in omega]

    return [one_d(dim // 2, c) + one_d(dim // 2, r) for r in range(rows) for c in range(cols)]


def test_positions_are_mae_sincos_2d():
    expected = torch.tensor(mae_2d_reference(8, 3, 5))
    torch.testing.assert_close(sincos_2d(8, 3, 5), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("modality,shape,tubelet", [("audio", (2, 1, 9, 13), 1), ("video", (2, 3, 4, 9, 8), 2)])
def test_patchify_follows_the_token_order_of_the_patch_embedding(modality, shape, tubelet):
    """Token j of the patch embedding is the projection of patchify's row j (remainders left out)."""
    stream = ViTStream(modality, dim=8, depth=1, heads=2, patch_size=4, tubelet=tubelet)
    x = torch.randn(shape)
    tokens = stream.patch_embed.proj(x).flatten(2).transpose(1, 2)
    w = stream.patch_embed.proj.weight  # [D, C, *patch] -> [D, *patch, C], patchify's order within a patch
    w = w.permute(0, *range(2, w.dim()), 1).flatten(1)
    torch.testing.assert_close(tokens, stream.patchify(x) @ w.t() + stream.patch_embed.proj.bias, atol=1e-5, rtol=1e-5)


def test_random_masking_keeps_the_share_with_a_different_draw_per_sample():
    tokens = torch.arange(2 * 40 * 3, dtype=torch.float32).view(2, 40, 3).repeat(4, 1, 1)
    visible, mask, restore = random_masking(tokens, 0.75, torch.Generator().manual_seed(0))
    assert visible.shape == (8, 10, 3)
    assert (mask.sum(dim=1) == 30).all() and set(mask.unique().tolist()) == {0.0, 1.0}
    assert len({tuple(m.tolist()) for m in mask}) == 8  # every sample its own positions
    for b in range(8):  # the visible tokens are those where the mask is 0, in some order
        kept = tokens[b][mask[b] == 0]
        assert sorted(map(tuple, visible[b].tolist())) == sorted(map(tuple, kept.tolist()))
    restored = torch.cat([visible, torch.full((8, 30, 3), -1.0)], dim=1).gather(1, restore[..., None].expand(-1, -1, 3))
    torch.testing.assert_close(restored[mask == 0], tokens[mask == 0])  # restore undoes the shuffle
    assert (restored[mask == 1] == -1).all()


def test_single_modality_passes_are_independent_of_the_other_modality():
    """CAV-MAE's layout: own blocks per modality, a shared block with modality-specific norms, a
    joint fusion. Changing the video changes the video and fused features, never the audio's."""
    torch.manual_seed(0)
    backbone = TwoStreamBackbone(BackboneConfig(**TINY_VIT, shared_depth=1, fusion="joint")).eval()
    video, spec = torch.randn(2, 3, 2, 8, 8), torch.randn(2, 1, 8, 12)
    a = backbone.forward_streams(video, spec)
    b = backbone.forward_streams(video + 1.0, spec)
    torch.testing.assert_close(a["audio"], b["audio"], atol=0, rtol=0)
    assert not torch.allclose(a["video"], b["video"]) and not torch.allclose(a["fused"], b["fused"])
    assert backbone.out_dim == 16 and a["fused"].shape == (2, 16)
    names = dict(backbone.named_parameters())
    assert "shared.0.norm1_a.weight" in names and "shared.0.norm1.weight" in names and "joint_norm.weight" in names
    assert not any(k.startswith("shared.0.attn") and ("_a" in k or "_v" in k) for k in names)  # one attention for both


def test_concat_vit_has_no_parameter_without_a_gradient():
    """Two plain ViTs (no shared blocks): every parameter gets a gradient from the fused features
    (DDP refuses parameters that never do)."""
    backbone = TwoStreamBackbone(BackboneConfig(**TINY_VIT))
    backbone(torch.randn(2, 3, 2, 8, 8), torch.randn(2, 1, 8, 12)).sum().backward()
    assert all(p.grad is not None for p in backbone.parameters())
    assert backbone.out_dim == 32


@pytest.mark.parametrize(
    "settings,words",
    [
        ({**TINY_VIT, "dim": 18}, "multiple of 4 and of heads"),
        ({"fusion": "joint"}, "need encoder: vit"),
        ({"encoder": "transformer"}, "encoder must be one of"),
        ({**TINY_VIT, "tubelet": 0}, "tubelet"),
    ],
)
def test_bad_vit_settings_are_named(settings, words):
    with pytest.raises(ConfigError, match=words):
        BackboneConfig(**settings)


def test_an_input_smaller_than_a_patch_is_named():
    with pytest.raises(ValueError, match="smaller than one patch"):
        ViTStream("audio", dim=8, depth=1, heads=2, patch_size=16)(torch.randn(1, 1, 8, 40))
