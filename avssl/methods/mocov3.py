"""MoCo v3 (Chen, Xie & He 2021) with a memory queue of momentum keys, as the paper keeps it."""

from __future__ import annotations

from typing import Any

import torch

from avssl.errors import ConfigError
from avssl.losses import moco_loss
from avssl.methods.momentum import MomentumMethod
from avssl.models.heads import mlp
from avssl.utils.dist import all_gather_no_grad, rank


class MoCoV3(MomentumMethod):
    """MoCo v3: online backbone + 3-layer projector + 2-layer predictor; momentum backbone +
    projector (no predictor); symmetric contrastive loss ``ctr(q1, k2) + ctr(q2, k1)`` with the
    keys of the whole global batch as in-batch candidates and a FIFO queue of earlier keys as
    extra negatives.

    The queue holds the momentum keys of the first view, gathered from every process (so each
    process holds the same queue), is a buffer (saved in checkpoints) and masks its unfilled
    slots. Each key is stored with its video's index, and a key of the query's own video is never
    a negative (in the batch or in the queue): a queue that holds more keys than one epoch
    enqueues (``queue_size`` > training videos) would otherwise meet every query with a clip of its
    own video from the previous epoch. Size it below the number of training videos to keep every
    queued key a true negative, e.g. 4096 for Kinetics-scale data and at most ~3,000 for AVE's
    3,339 training videos; a larger queue costs compute for masked keys only. With N > 2 views the loss averages ``ctr(q_i, k_j)`` over ordered pairs ``i != j``,
    scaled so that N = 2 gives MoCo v3's sum of the two directions.

    Args:
        proj_hidden_dim: hidden width of the projector and predictor (MoCo v3: 4096).
        proj_dim: output width of both (MoCo v3: 256).
        temperature: ``tau`` of the loss. MoCo v3 uses 1.0 for ResNet-50 without a queue; with a
            queue we follow MoCo v2 (0.2). Not stated in the paper.
        queue_size: number of keys in the queue (0 disables it). Not stated in the paper; see
            above for sizing it against the dataset.
        base_momentum: EMA coefficient at step 0 (MoCo v3: 0.99, cosine to 1).
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments.
    """

    def __init__(
        self,
        *,
        proj_hidden_dim: int = 4096,
        proj_dim: int = 256,
        temperature: float = 0.2,
        queue_size: int = 4096,
        base_momentum: float = 0.99,
        final_momentum: float = 1.0,
        **kwargs: Any,
    ):
        super().__init__(base_momentum=base_momentum, final_momentum=final_momentum, **kwargs)
        self.save_hyperparameters()
        if queue_size < 0:
            raise ConfigError(f"model.queue_size must be >= 0, got {queue_size}")
        self.temperature = temperature
        self.projector = mlp(self.backbone.out_dim, proj_hidden_dim, proj_dim, num_layers=3, last_bn=True)
        self.predictor = mlp(proj_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.build_target()
        self.register_buffer("queue", torch.zeros(queue_size, proj_dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_len", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_ids", torch.full((queue_size,), -1, dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Write ``keys`` ``[M, P]`` (and their video indices ``ids`` ``[M]``) into the ring buffer
        at the pointer (wrapping around); when ``M`` exceeds the queue only the last
        ``queue_size`` keys stay. No host sync: the pointer is a device tensor."""
        size = self.queue.shape[0]
        if size == 0:
            return
        keys = keys.detach()[-size:].to(self.queue.dtype)
        ids = torch.full((keys.shape[0],), -1, dtype=torch.long, device=keys.device) if ids is None else ids[-size:]
        index = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue.index_copy_(0, index, keys)
        self.queue_ids.index_copy_(0, index, ids.to(self.queue_ids.dtype))
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)
        self.queue_len.copy_(torch.clamp(self.queue_len + keys.shape[0], max=size))

    def queue_valid(self) -> torch.Tensor:
        return torch.arange(self.queue.shape[0], device=self.queue.device) < self.queue_len

    def ssl_loss(self, features: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        b, n = features.shape[:2]
        z = self.projector(features.flatten(0, 1))
        q = self.predictor(z).view(b, n, -1)
        k_all = all_gather_no_grad(self.target_projections(batch))  # [B * world, N, P]
        ids = batch["index"]  # [B] video indices: a clip of the query's own video is no negative
        ids_all = all_gather_no_grad(ids)
        queue = dict(queue=self.queue, queue_valid=self.queue_valid(), queue_ids=self.queue_ids) if self.queue.shape[0] > 0 else {}
        offset = rank() * b
        loss = sum(
            moco_loss(q[:, i], k_all[:, j], self.temperature, offset=offset, query_ids=ids, key_ids=ids_all, **queue)
            for i in range(n)
            for j in range(n)
            if i != j
        ) / (n - 1)
        self.enqueue(k_all[:, 0], ids_all)
        return loss, z.view(b, n, -1)
