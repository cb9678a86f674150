"""info_nce against a direct transcription of eq. 1 and closed forms."""

import math

import pytest
import torch

from avssl.losses import info_nce


def eq1_reference(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 1 literally: L_ij = -log exp(sim(z_i, z_j)/tau) / sum_{k != i} exp(sim(z_i, z_k)/tau),
    averaged over all 2N anchors (each clip is an anchor with its partner as the positive)."""
    z = torch.cat([z1, z2])
    n2 = z.shape[0]
    n = n2 // 2

    def sim(u, v):
        return float(u @ v / (u.norm() * v.norm()))

    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        denom = sum(math.exp(sim(z[i], z[k]) / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(sim(z[i], z[j]) / tau) / denom)
    return torch.tensor(total / n2)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_info_nce_matches_eq1(tau):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(info_nce(z1, z2, tau), eq1_reference(z1, z2, tau).double())


def test_identical_embeddings_give_log_2n_minus_1():
    z = torch.ones(8, 4)
    assert info_nce(z, z, 0.1).item() == pytest.approx(math.log(2 * 8 - 1), rel=1e-5)


def test_orthogonal_negatives_closed_form():
    n, tau = 4, 0.5
    z = torch.eye(n)  # pairs identical, all other embeddings orthogonal
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + (2 * n - 2)))
    assert info_nce(z, z, tau).item() == pytest.approx(expected, rel=1e-5)


def test_scale_invariance_and_gradients():
    z1, z2 = torch.randn(5, 3, requires_grad=True), torch.randn(5, 3)
    loss = info_nce(z1, z2)
    torch.testing.assert_close(loss, info_nce(3 * z1, z2))
    loss.backward()
    assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


def test_shape_errors():
    with pytest.raises(ValueError, match="info_nce"):
        info_nce(torch.randn(4, 3), torch.randn(5, 3))
