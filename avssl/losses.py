"""Loss functions as pure functions of embeddings.

Each is a transcription of its paper's formula, batched; tests compare them with a naive loop and
with closed forms (``tests/test_losses.py``). Gathering across processes is the caller's job
(:func:`avssl.utils.dist.gather_with_grad`), so every function here is single-process math.
Every loss runs in float32 whatever the autocast around it (:func:`in_float32`): under bf16 the
similarity matmuls would lose ~1e-3 of the loss.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def in_float32(loss):
    """``loss`` with its half-precision tensor arguments cast to float32 (float64 stays) and
    autocast disabled inside (gradients flow back through the casts to the lower-precision embeddings)."""

    def cast(value):
        return value.float() if torch.is_tensor(value) and value.dtype in (torch.float16, torch.bfloat16) else value

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        args, kwargs = [cast(a) for a in args], {k: cast(v) for k, v in kwargs.items()}
        device = next((a.device.type for a in (*args, *kwargs.values()) if torch.is_tensor(a)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return loss(*args, **kwargs)

    return wrapper


def _check_pair(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"{name} expects two [N, D] tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")


@in_float32
def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent / InfoNCE (paper eq. 1, SimCLR).

    ``z1``, ``z2``: ``[N, D]``; row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair,
    the other ``2N - 2`` embeddings are the negatives of an anchor. Similarities are cosine
    similarities divided by ``temperature``; the loss is the mean over all ``2N`` anchors.
    """
    _check_pair("info_nce", z1, z2)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # [2N, D]
    sim = z @ z.t() / temperature  # [2N, 2N]
    sim.fill_diagonal_(float("-inf"))  # k != i
    positive = torch.cat([torch.arange(n, 2 * n, device=z.device), torch.arange(0, n, device=z.device)])  # partner of each anchor
    return F.cross_entropy(sim, positive)


@in_float32
def moco_loss(
    q: torch.Tensor,
    k: torch.Tensor,
    temperature: float = 0.2,
    *,
    queue: torch.Tensor | None = None,
    queue_valid: torch.Tensor | None = None,
    offset: int = 0,
    query_ids: torch.Tensor | None = None,
    key_ids: torch.Tensor | None = None,
    queue_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """MoCo v3 contrastive loss ``ctr(q, k) = 2 tau * CE(q k^T / tau, positives)`` with a key queue.

    Args:
        q: ``[B, D]`` queries of this process (online branch, after the predictor).
        k: ``[M, D]`` keys of the other view from the momentum encoder (``M = B * world`` when
            gathered); the positive of ``q[i]`` is ``k[offset + i]``, every other key is a negative.
        temperature: ``tau``.
        queue: optional ``[K, D]`` keys of earlier steps, extra negatives (MoCo v1/v2; the paper
            keeps it with MoCo v3 because its batches are small).
        queue_valid: optional ``[K]`` bool, ``False`` for slots not yet filled (masked out).
        offset: index of this process's first key in ``k`` (``rank * B``).
        query_ids: optional ``[B]`` video index of each query. A key of the query's own video
            other than its positive (a clip of the same video in the batch or in the queue, e.g.
            from the previous epoch) is not a negative: it is masked out.
        key_ids: optional ``[M]`` video index of each key.
        queue_ids: optional ``[K]`` video index of each queued key.

    Keys and queue are used as given (the caller detaches them: no gradient flows into the
    momentum encoder). ``q``, ``k`` and ``queue`` are L2-normalised here.
    """
    if q.dim() != 2 or k.dim() != 2 or q.shape[1] != k.shape[1]:
        raise ValueError(f"moco_loss expects [B, D] queries and [M, D] keys, got {tuple(q.shape)} and {tuple(k.shape)}")
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    labels = torch.arange(q.shape[0], device=q.device) + offset
    logits = q @ k.t()
    if query_ids is not None and key_ids is not None:
        same_video = (query_ids[:, None] == key_ids[None, :]) & (torch.arange(k.shape[0], device=q.device)[None, :] != labels[:, None])
        logits = logits.masked_fill(same_video, float("-inf"))
    if queue is not None:
        queue_logits = q @ F.normalize(queue, dim=1).t()
        if queue_valid is not None:
            queue_logits = queue_logits.masked_fill(~queue_valid, float("-inf"))
        if query_ids is not None and queue_ids is not None:
            queue_logits = queue_logits.masked_fill(query_ids[:, None] == queue_ids[None, :], float("-inf"))
        logits = torch.cat([logits, queue_logits], dim=1)
    return F.cross_entropy(logits / temperature, labels) * (2 * temperature)


@in_float32
def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL regression loss ``2 - 2 cos(p, z)`` (normalised MSE), mean over the batch.

    ``p``: ``[B, D]`` online predictions; ``z``: ``[B, D]`` target projections (detached by the
    caller: the target network is a moving average, not trained)."""
    _check_pair("byol_loss", p, z)
    return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()


@in_float32
def simsiam_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam ``D(p, z) = -cos(p, stopgrad(z))``, mean over the batch.

    The stop-gradient is part of the formula and applied here: no gradient reaches ``z``."""
    _check_pair("simsiam_loss", p, z)
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


@in_float32
def cross_modal_nce(za: torch.Tensor, zv: torch.Tensor, temperature: float = 0.1, symmetric: bool = True) -> torch.Tensor:
    """Audio-video InfoNCE with cross-modal negatives only (AVID / CAV-MAE style).

    ``za``, ``zv``: ``[N, D]`` audio and video embeddings; row ``i`` of each comes from the same
    clip (the positive), the other ``N - 1`` rows of the other modality are the negatives. The
    mean of the audio->video and video->audio cross-entropies over cosine similarity / ``temperature``;
    ``symmetric=False``: the video->audio term alone (each video picks its audio among the batch's
    audios: CAV-MAE's default ``forward_contrastive``, a softmax over the columns' audios).
    """
    _check_pair("cross_modal_nce", za, zv)
    sim = F.normalize(za, dim=1) @ F.normalize(zv, dim=1).t() / temperature  # [N, N]
    labels = torch.arange(za.shape[0], device=za.device)
    if not symmetric:
        return F.cross_entropy(sim.t(), labels)
    return (F.cross_entropy(sim, labels) + F.cross_entropy(sim.t(), labels)) / 2


@in_float32
def masked_reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool = True) -> torch.Tensor:
    """MAE's reconstruction loss (He et al. 2022; CAV-MAE's ``forward_mae_loss``).

    ``pred``, ``target``: ``[B, N, P]`` predicted and true values of each of the N patches;
    ``mask``: ``[B, N]``, 1 where the patch was masked. With ``norm_pix`` each target patch is
    normalised by its own mean and unbiased variance (``(t - mean) / sqrt(var + 1e-6)``); the loss
    is each patch's mean squared error, averaged over the masked patches only.
    """
    if pred.shape != target.shape or pred.dim() != 3 or mask.shape != pred.shape[:2]:
        raise ValueError(
            f"masked_reconstruction_loss expects pred / target [B, N, P] and mask [B, N], got "
            f"{tuple(pred.shape)}, {tuple(target.shape)}, {tuple(mask.shape)}"
        )
    if norm_pix:
        target = (target - target.mean(dim=-1, keepdim=True)) / (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
    per_patch = (pred - target).pow(2).mean(dim=-1)
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum()


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The ``D * (D - 1)`` off-diagonal entries of a square matrix, flattened."""
    d = m.shape[0]
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


@in_float32
def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    eps: float = 1e-4,
) -> torch.Tensor:
    """VICReg (Bardes et al. 2022): ``sim_weight * invariance + var_weight * variance + cov_weight * covariance``.

    ``z1``, ``z2``: ``[N, D]`` projections of two views, row ``i`` of each from the same sample.

    - invariance: the mean squared error between ``z1`` and ``z2`` (over all ``N * D`` entries);
    - variance: per view, the mean over dimensions of ``relu(1 - sqrt(var + eps))`` with the
      unbiased variance over the batch; the mean of the two views;
    - covariance: per view, the sum of the squared off-diagonal entries of the covariance matrix
      (centred, divided by ``N - 1``), divided by ``D``; the sum of the two views.

    As ``facebookresearch/vicreg`` (``main_vicreg.py``) computes it, with the batch the caller
    passes: gathered from every process, the statistics are those of the global batch.
    """
    _check_pair("vicreg_loss", z1, z2)
    if z1.shape[0] < 2:
        raise ValueError(f"vicreg_loss needs at least 2 samples for the batch variance, got {z1.shape[0]}")
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)
    variance, covariance = z1.new_zeros(()), z1.new_zeros(())
    for z in (z1, z2):
        z = z - z.mean(dim=0)
        variance = variance + F.relu(1 - torch.sqrt(z.var(dim=0) + eps)).mean() / 2
        covariance = covariance + _off_diagonal(z.t() @ z / (n - 1)).pow(2).sum() / d
    return sim_weight * invariance + var_weight * variance + cov_weight * covariance


@in_float32
def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 0.0051, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021): ``sum_i (1 - c_ii)^2 + lambd * sum_{i != j} c_ij^2``.

    ``z1``, ``z2``: ``[N, D]`` projections of two views. Each is normalised per dimension over the
    batch as a BatchNorm without affine parameters in training mode does (mean, biased variance,
    ``eps``); ``c = bn(z1)^T bn(z2) / N`` is the ``[D, D]`` cross-correlation matrix. As
    ``facebookresearch/barlowtwins`` (``main.py``) computes it (no loss scale): on the batch the
    caller passes, the global batch when gathered from every process.
    """
    _check_pair("barlow_twins_loss", z1, z2)
    if z1.shape[0] < 2:
        raise ValueError(f"barlow_twins_loss needs at least 2 samples for the batch statistics, got {z1.shape[0]}")

    def bn(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)

    c = bn(z1).t() @ bn(z2) / z1.shape[0]
    return (1 - torch.diagonal(c)).pow(2).sum() + lambd * _off_diagonal(c).pow(2).sum()
