"""info_nce against a direct transcription of eq. 1 and closed forms."""

import math

import pytest
import torch

from avssl.losses import (
    barlow_twins_loss,
    byol_loss,
    cross_modal_nce,
    info_nce,
    masked_reconstruction_loss,
    moco_loss,
    simsiam_loss,
    vicreg_loss,
)


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


# ---------------------------------------------------------------- MoCo v3, BYOL, SimSiam, cross-modal
def cos(u, v):
    return float(u @ v / (u.norm() * v.norm()))


def moco_reference(q, k, tau, queue=None, offset=0):
    """ctr(q, k) = -2 tau * mean_i log( exp(q_i.k_{i+off}/tau) / sum_m exp(q_i.k_m/tau) ), keys + queue."""
    keys = list(k) + (list(queue) if queue is not None else [])
    total = 0.0
    for i, qi in enumerate(q):
        logits = [cos(qi, km) / tau for km in keys]
        total += -(logits[i + offset] - math.log(sum(math.exp(x) for x in logits)))
    return torch.tensor(2 * tau * total / len(q), dtype=torch.float64)


@pytest.mark.parametrize("with_queue", [False, True])
def test_moco_loss_matches_transcription(with_queue):
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    queue = torch.randn(5, 4, generator=g, dtype=torch.float64) if with_queue else None
    got = moco_loss(q, k, 0.2, queue=queue, offset=3)  # this process's keys are k[3:6]
    torch.testing.assert_close(got, moco_reference(q, k, 0.2, queue, offset=3))


def test_moco_queue_mask_drops_unfilled_slots():
    g = torch.Generator().manual_seed(2)
    q, k, queue = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)
    valid = torch.tensor([True, True, False, False, False, False])
    torch.testing.assert_close(moco_loss(q, k, queue=queue, queue_valid=valid), moco_loss(q, k, queue=queue[:2]))


def test_moco_same_video_keys_in_the_batch_and_queue_are_masked():
    g = torch.Generator().manual_seed(4)
    q, k, queue = (torch.randn(n, 8, generator=g, dtype=torch.float64) for n in (3, 6, 4))
    query_ids, key_ids, queue_ids = torch.tensor([5, 6, 7]), torch.tensor([1, 5, 6, 7, 5, 2]), torch.tensor([7, 3, 5, 9])
    got = moco_loss(q, k, queue=queue, offset=1, query_ids=query_ids, key_ids=key_ids, queue_ids=queue_ids)
    # query 0 (video 5): positive k[1]; drop k[4] (video 5 again) and queue[2]; query 2 (video 7): drop queue[0]
    expected = (
        moco_reference(q[:1], k[[0, 1, 2, 3, 5]], 0.2, queue[[0, 1, 3]], offset=1)
        + moco_reference(q[1:2], k, 0.2, queue, offset=2)
        + moco_reference(q[2:], k, 0.2, queue[[1, 2, 3]], offset=3)
    ) / 3
    torch.testing.assert_close(got, expected)


def test_moco_loss_closed_form_orthogonal():
    n, tau = 4, 0.5
    z = torch.eye(n)  # positives identical, negatives orthogonal: -2 tau log(e^{1/tau} / (e^{1/tau} + n - 1))
    expected = -2 * tau * math.log(math.exp(1 / tau) / (math.exp(1 / tau) + n - 1))
    assert moco_loss(z, z, tau).item() == pytest.approx(expected, rel=1e-6)


def test_byol_and_simsiam_transcriptions_and_closed_forms():
    g = torch.Generator().manual_seed(3)
    p, z = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(5, 6, generator=g, dtype=torch.float64)
    byol_ref = sum(float(((pi / pi.norm() - zi / zi.norm()) ** 2).sum()) for pi, zi in zip(p, z)) / 5  # normalised MSE
    assert byol_loss(p, z).item() == pytest.approx(byol_ref, rel=1e-9)
    assert simsiam_loss(p, z).item() == pytest.approx(-sum(cos(pi, zi) for pi, zi in zip(p, z)) / 5, rel=1e-9)
    assert byol_loss(z, 3 * z).item() == pytest.approx(0.0, abs=1e-9) and byol_loss(z, -z).item() == pytest.approx(4.0)
    assert simsiam_loss(z, 2 * z).item() == pytest.approx(-1.0)


def test_simsiam_stop_gradient():
    p, z = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    simsiam_loss(p, z).backward()
    assert p.grad.abs().sum() > 0 and z.grad is None


def test_cross_modal_nce_transcription():
    g = torch.Generator().manual_seed(4)
    za, zv, tau = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64), 0.3

    def one_way(x, y):
        return sum(-(cos(x[i], y[i]) / tau - math.log(sum(math.exp(cos(x[i], yk) / tau) for yk in y))) for i in range(len(x))) / len(x)

    expected = (one_way(za, zv) + one_way(zv, za)) / 2
    assert cross_modal_nce(za, zv, tau).item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("fn", [byol_loss, simsiam_loss, cross_modal_nce, vicreg_loss, barlow_twins_loss])
def test_pair_shape_errors(fn):
    with pytest.raises(ValueError, match=fn.__name__):
        fn(torch.randn(4, 3), torch.randn(4, 2))


def vicreg_reference(x, y, sim=25.0, var=25.0, cov=1.0, eps=1e-4):
    """VICReg's three terms entry by entry (Bardes et al. 2022, eqs. 1-5)."""
    n, d = len(x), len(x[0])
    invariance = sum((x[i][k] - y[i][k]) ** 2 for i in range(n) for k in range(d)) / (n * d)
    variance, covariance = 0.0, 0.0
    for z in (x, y):
        mean = [sum(z[i][k] for i in range(n)) / n for k in range(d)]
        var_k = [sum((z[i][k] - mean[k]) ** 2 for i in range(n)) / (n - 1) for k in range(d)]
        variance += sum(max(0.0, 1 - math.sqrt(v + eps)) for v in var_k) / d / 2
        c = [[sum((z[i][k] - mean[k]) * (z[i][m] - mean[m]) for i in range(n)) / (n - 1) for m in range(d)] for k in range(d)]
        covariance += sum(c[k][m] ** 2 for k in range(d) for m in range(d) if k != m) / d
    return sim * invariance + var * variance + cov * covariance


@pytest.mark.parametrize("scale", [0.1, 2.0])  # small: the variance hinge is active; large: it is not
def test_vicreg_loss_matches_the_terms_entry_by_entry(scale):
    g = torch.Generator().manual_seed(5)
    x, y = (scale * torch.randn(7, 4, generator=g, dtype=torch.float64) for _ in range(2))
    expected = vicreg_reference(x.tolist(), y.tolist())
    assert vicreg_loss(x, y).item() == pytest.approx(expected, rel=1e-9)
    expected = vicreg_reference(x.tolist(), y.tolist(), sim=1.0, var=2.0, cov=3.0, eps=1e-2)
    assert vicreg_loss(x, y, sim_weight=1.0, var_weight=2.0, cov_weight=3.0, eps=1e-2).item() == pytest.approx(expected, rel=1e-9)


def test_vicreg_loss_closed_forms():
    # identical, decorrelated unit-variance views: every term is 0 (up to eps in the hinge)
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64) * math.sqrt(3 / 4)
    assert vicreg_loss(z, z, eps=0.0).item() == pytest.approx(0.0, abs=1e-12)
    # collapsed views: invariance 0, variance 1 - sqrt(eps) per view, covariance 0
    c = torch.ones(5, 3)
    assert vicreg_loss(c, c).item() == pytest.approx(25.0 * (1 - math.sqrt(1e-4)), rel=1e-6)


def barlow_reference(x, y, lambd):
    """Barlow Twins' cross-correlation entry by entry (Zbontar et al. 2021, eqs. 1-2), each view
    standardised per dimension with the batch's mean and biased variance (+1e-5)."""
    n, d = len(x), len(x[0])

    def standardise(z):
        mean = [sum(z[i][k] for i in range(n)) / n for k in range(d)]
        std = [math.sqrt(sum((z[i][k] - mean[k]) ** 2 for i in range(n)) / n + 1e-5) for k in range(d)]
        return [[(z[i][k] - mean[k]) / std[k] for k in range(d)] for i in range(n)]

    a, b = standardise(x), standardise(y)
    c = [[sum(a[i][k] * b[i][m] for i in range(n)) / n for m in range(d)] for k in range(d)]
    return sum((1 - c[k][k]) ** 2 for k in range(d)) + lambd * sum(c[k][m] ** 2 for k in range(d) for m in range(d) if k != m)


@pytest.mark.parametrize("lambd", [0.0051, 0.5])
def test_barlow_twins_loss_matches_the_cross_correlation_entry_by_entry(lambd):
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    assert barlow_twins_loss(x, y, lambd).item() == pytest.approx(barlow_reference(x.tolist(), y.tolist(), lambd), rel=1e-9)


def test_barlow_twins_normalisation_is_a_non_affine_batchnorm_in_training_mode():
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(9, 5, generator=g), torch.randn(9, 5, generator=g)
    bn = torch.nn.BatchNorm1d(5, affine=False).train()
    c = bn(x).t() @ bn(y) / 9
    expected = (1 - torch.diagonal(c)).pow(2).sum() + 0.0051 * (c - torch.diag(torch.diagonal(c))).pow(2).sum()
    torch.testing.assert_close(barlow_twins_loss(x, y), expected)
    assert barlow_twins_loss(x, x, lambd=0.0).item() == pytest.approx(0.0, abs=1e-4)  # c_ii = 1 - eps / var


@pytest.mark.parametrize("fn", [vicreg_loss, barlow_twins_loss])
def test_batch_statistics_losses_refuse_a_single_sample(fn):
    with pytest.raises(ValueError, match="at least 2 samples"):
        fn(torch.randn(1, 3), torch.randn(1, 3))


@pytest.mark.parametrize("fn", [vicreg_loss, barlow_twins_loss])
def test_batch_statistics_losses_run_in_float32_under_bf16(fn):
    g = torch.Generator().manual_seed(8)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    loss = fn(x.bfloat16(), y.bfloat16())
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, fn(x.bfloat16().float(), y.bfloat16().float()))


def mae_reference(pred, target, mask, norm_pix: bool) -> float:
    """CAV-MAE's forward_mae_loss, one patch at a time in Python floats."""
    total, count = 0.0, 0
    for b in range(len(pred)):
        for i in range(len(pred[b])):
            t = target[b][i]
            if norm_pix:
                mean = sum(t) / len(t)
                var = sum((v - mean) ** 2 for v in t) / (len(t) - 1)  # torch.var: unbiased
                t = [(v - mean) / math.sqrt(var + 1e-6) for v in t]
            if mask[b][i]:
                total += sum((p - v) ** 2 for p, v in zip(pred[b][i], t)) / len(t)
                count += 1
    return total / count


@pytest.mark.parametrize("norm_pix", [True, False])
def test_masked_reconstruction_loss_matches_the_per_patch_transcription(norm_pix):
    g = torch.Generator().manual_seed(9)
    pred, target = torch.randn(3, 5, 6, generator=g, dtype=torch.float64), torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
    mask = (torch.rand(3, 5, generator=g) < 0.6).double()
    mask[:, 0] = 1
    expected = mae_reference(pred.tolist(), target.tolist(), mask.tolist(), norm_pix)
    assert masked_reconstruction_loss(pred, target, mask, norm_pix).item() == pytest.approx(expected, rel=1e-9)


def test_masked_reconstruction_loss_ignores_the_visible_patches():
    g = torch.Generator().manual_seed(10)
    pred, target = torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, 3, generator=g)
    mask = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 0]])
    changed = pred.clone()
    changed[mask == 0] += 5.0
    torch.testing.assert_close(masked_reconstruction_loss(changed, target, mask), masked_reconstruction_loss(pred, target, mask))
    assert masked_reconstruction_loss(target, target, mask, norm_pix=False).item() == 0.0
    loss = masked_reconstruction_loss(pred.bfloat16(), target.bfloat16(), mask)
    assert loss.dtype == torch.float32
    with pytest.raises(ValueError, match="mask"):
        masked_reconstruction_loss(pred, target, mask[:, :3])


def test_one_direction_cross_modal_nce_is_cav_mae_forward_contrastive():
    """symmetric=False: -mean(diag(log_softmax(a @ v.T / T, dim=0))), CAV-MAE's default term."""
    g = torch.Generator().manual_seed(11)
    a, v = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    total = torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(v, dim=-1).t() / 0.05
    expected = -torch.mean(torch.diag(torch.nn.functional.log_softmax(total, dim=0)))
    torch.testing.assert_close(cross_modal_nce(a, v, 0.05, symmetric=False), expected)
    other = -torch.mean(torch.diag(torch.nn.functional.log_softmax(total.t(), dim=0)))
    torch.testing.assert_close(cross_modal_nce(a, v, 0.05), (expected + other) / 2)
