"""CAV-MAE (Gong et al., ICLR 2023): masked audio-visual autoencoding plus a cross-modal
contrastive term, on the two-stream ViT backbone (``configs/cavmae.yaml``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from avssl.augment.views import batch_generator
from avssl.errors import ConfigError
from avssl.losses import cross_modal_nce, masked_reconstruction_loss
from avssl.methods.base import SSLMethod
from avssl.models.vit import Block, grid_positions, init_vit_, random_masking
from avssl.utils.dist import gather_with_grad, world_size

CAVMAE_BATCH = 48  # the batch at which CAV-MAE's learning rate is given


class CAVMAE(SSLMethod):
    """Contrastive audio-visual masked autoencoder, as ``YuanGongND/cav-mae``
    (``src/models/cav_mae.py``, class ``CAVMAE``) defines it.

    Each view's spectrogram and frames are cut into patch tokens (the backbone's
    :class:`~avssl.models.vit.ViTStream`; the paper's augmentations are applied before, to the
    waveform and frames). A random ``mask_ratio_*`` share of each modality's tokens is dropped,
    a different draw per sample; the visible tokens go through their modality's own blocks, then

    * together through the shared blocks (joint LayerNorms) and the joint LayerNorm: the
      decoder's input. The decoder (``decoder_dim`` wide, ``decoder_depth`` blocks, its own fixed
      positions and modality embeddings, a mask token in each masked position) predicts every
      patch with one linear head per modality; the loss is
      :func:`~avssl.losses.masked_reconstruction_loss` on the masked patches;
    * each modality alone through the shared blocks (its LayerNorms) and its final LayerNorm, then
      the mean over its visible tokens: the embeddings of :func:`~avssl.losses.cross_modal_nce`
      at ``temperature``, the negatives gathered from every process (CAV-MAE's DataParallel code
      sees only its GPU's share).

    ``loss = mae_weight * (L_audio + L_video) + contrastive_weight * L_c``. With the paper's two
    views per video the contrastive term pairs the audio and video of the same view, each view's
    negatives the other videos' same view (never the other view of the same video); the
    reconstruction loss covers every view.

    The backbone must be ``encoder: vit`` with ``fusion: joint`` (CAV-MAE: ``depth`` 11,
    ``shared_depth`` 1); the evaluation's fused readout is then CAV-MAE's unmasked mean-pooled
    joint tokens, the per-stream readouts its single-modality passes (``forward_feat``).

    The optimiser is CAV-MAE's: Adam (L2 weight decay ``weight_decay`` on every parameter,
    ``betas``), learning rate ``base_lr * global batch / 48``, halved (``lr_decay``) every
    ``lr_decay_every`` epochs from epoch ``lr_decay_start`` (CAV-MAE: 10, 15, 20 in 25 epochs),
    after an optional linear warm-up (``warmup_epochs``; CAV-MAE: none).

    Args:
        mask_ratio_audio: share of the audio tokens masked (0.75).
        mask_ratio_video: share of the video tokens masked (0.75).
        decoder_dim: the decoder's width (512).
        decoder_depth: the decoder's blocks (8).
        decoder_heads: the decoder's attention heads (16).
        mae_weight: weight of the two reconstruction losses (1.0).
        contrastive_weight: weight of the contrastive loss (0.01).
        temperature: the contrastive term's temperature (0.05).
        symmetric: both directions of the contrastive term (default); ``False``: CAV-MAE's default
            one direction (each video picks its audio).
        norm_pix: normalise each target patch by its mean and variance (CAV-MAE's pre-training: on).
        betas: Adam's betas.
        lr_decay_start: the first epoch at a decayed learning rate (10).
        lr_decay_every: epochs between two decays (5).
        lr_decay: the factor of each decay (0.5).
        **kwargs: the :class:`~avssl.methods.base.SSLMethod` arguments (``base_lr`` 5e-5 at batch
            48, ``weight_decay`` 5e-7, ``warmup_epochs`` 0, ``probe_lr`` 1e-3 here: an Adam rate).
    """

    def __init__(
        self,
        *,
        mask_ratio_audio: float = 0.75,
        mask_ratio_video: float = 0.75,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        mae_weight: float = 1.0,
        contrastive_weight: float = 0.01,
        temperature: float = 0.05,
        symmetric: bool = True,
        norm_pix: bool = True,
        betas: tuple[float, float] = (0.95, 0.999),
        lr_decay_start: int = 10,
        lr_decay_every: int = 5,
        lr_decay: float = 0.5,
        base_lr: float = 5e-5,
        weight_decay: float = 5e-7,
        warmup_epochs: float = 0,
        probe_lr: float = 1e-3,
        **kwargs: Any,
    ):
        super().__init__(base_lr=base_lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs, probe_lr=probe_lr, **kwargs)
        self.save_hyperparameters()
        arch = self.backbone.config
        if arch.encoder != "vit" or arch.fusion != "joint":
            raise ConfigError(
                "CAVMAE needs the two-stream ViT with the joint fusion: model.backbone.encoder vit and "
                f"model.backbone.fusion joint (configs/cavmae.yaml), got encoder {arch.encoder!r}, fusion {arch.fusion!r}"
            )
        if self.stream_projectors is not None:
            raise ConfigError(
                "CAVMAE has its own contrastive term (model.contrastive_weight): set model.cross_modal_weight and "
                "model.stream_weight to 0 (configs/demo.yaml sets cross_modal_weight 1.0: add --model.init_args.cross_modal_weight 0)"
            )
        for name, ratio in (("mask_ratio_audio", mask_ratio_audio), ("mask_ratio_video", mask_ratio_video)):
            if not 0 < ratio < 1:
                raise ConfigError(f"model.{name} must be in (0, 1), got {ratio}")
        if decoder_dim % decoder_heads or decoder_dim % 4:
            raise ConfigError(f"model.decoder_dim ({decoder_dim}) must be a multiple of 4 and of decoder_heads ({decoder_heads})")
        if temperature <= 0 or min(mae_weight, contrastive_weight) < 0:
            raise ConfigError("model.temperature must be > 0 and the loss weights >= 0")
        patch_values = {k: getattr(self.backbone, k).patch_embed.proj.weight[0].numel() for k in ("audio", "video")}
        self.decoder_embed = nn.Linear(arch.dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_modality_a = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_modality_v = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, decoder_heads) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred_a = nn.Linear(decoder_dim, patch_values["audio"])
        self.decoder_pred_v = nn.Linear(decoder_dim, patch_values["video"])
        init_vit_(self.decoder_blocks)
        for module in (self.decoder_embed, self.decoder_norm, self.decoder_pred_a, self.decoder_pred_v):
            init_vit_(module)
        for p in (self.mask_token, self.decoder_modality_a, self.decoder_modality_v):
            nn.init.normal_(p, std=0.02)

    def decode(self, latent: torch.Tensor, restore: dict[str, torch.Tensor], grids: dict[str, tuple[int, ...]]):
        """Joint latent ``[M, Ka + Kv, dim]`` (visible tokens, audio first) -> predicted patches
        ``{"audio": [M, Na, Pa], "video": [M, Nv, Pv]}`` in the original token order."""
        x = self.decoder_embed(latent)
        m, d = x.shape[0], x.shape[2]
        parts, start = [], 0
        for key, modality in (("audio", self.decoder_modality_a), ("video", self.decoder_modality_v)):
            n = restore[key].shape[1]
            keep = int(n * (1 - self.hparams[f"mask_ratio_{key}"]))
            full = torch.cat([x[:, start : start + keep], self.mask_token.expand(m, n - keep, d)], dim=1)
            full = full.gather(1, restore[key][..., None].expand(-1, -1, d))  # unshuffle
            parts.append(full + grid_positions(d, grids[key], x.device).to(x.dtype) + modality)
            start += keep
        y = torch.cat(parts, dim=1)
        for block in self.decoder_blocks:
            y = block(y)
        y = self.decoder_norm(y)
        n_audio = restore["audio"].shape[1]
        return {"audio": self.decoder_pred_a(y[:, :n_audio]), "video": self.decoder_pred_v(y[:, n_audio:])}

    def mask_generator(self, device: torch.device) -> torch.Generator:
        """The masks' generator of this training batch: seeded from the views' seed, the batch
        number and the rank (reproducible, restored on resume), apart from the views' draws."""
        return batch_generator(self.trainer, self.view_spec.seed + 1, device)

    def contrastive_loss(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """The contrastive term of this process's embeddings ``[B, N, D]`` of each view's audio and
        video: :func:`~avssl.losses.cross_modal_nce` of each view, the negatives gathered (with
        their gradient) from every process, averaged over the views."""
        za, zv, hp = gather_with_grad(audio), gather_with_grad(video), self.hparams
        n = za.shape[1]
        return sum(cross_modal_nce(za[:, i], zv[:, i], hp.temperature, hp.symmetric) for i in range(n)) / n

    def objective(self, batch: dict):
        hp, backbone = self.hparams, self.backbone
        b, n = batch["video"].shape[:2]
        inputs = {"audio": batch["spec"].flatten(0, 1), "video": batch["video"].flatten(0, 1)}  # [M = B * N, ...]
        generator = self.mask_generator(inputs["video"].device)
        visible, masks, restore, grids = {}, {}, {}, {}
        for key, x in inputs.items():
            stream = getattr(backbone, key)
            grids[key] = stream.grid(x)
            tokens, masks[key], restore[key] = random_masking(stream.embed(x), hp[f"mask_ratio_{key}"], generator)
            visible[key] = stream.encode(tokens)
        latent = backbone.joint(visible["audio"], visible["video"])
        pred = self.decode(latent, restore, grids)
        recon = {
            key: masked_reconstruction_loss(pred[key], getattr(backbone, key).patchify(x), masks[key], hp.norm_pix)
            for key, x in inputs.items()
        }
        local = {key: getattr(backbone, key).pool(backbone.shared_blocks(visible[key], key)).view(b, n, -1) for key in inputs}
        contrastive = self.contrastive_loss(local["audio"], local["video"])
        loss = hp.mae_weight * (recon["audio"] + recon["video"]) + hp.contrastive_weight * contrastive
        logs = {
            "train/ssl_loss": loss.detach(),
            "train/mae_audio": recon["audio"].detach(),
            "train/mae_video": recon["video"].detach(),
            "train/contrastive": contrastive.detach(),
        }
        features = latent.mean(dim=1).view(b, n, -1)  # the masked joint tokens, for the online probe
        return loss, torch.cat([local["audio"], local["video"]], dim=1), features, logs

    def configure_optimizers(self):
        hp = self.hparams
        global_batch = self.trainer.datamodule.batch_size * world_size() * self.trainer.accumulate_grad_batches
        probe = set(self.probe.parameters()) if self.probe is not None else set()
        groups = [{"params": [p for p in self.parameters() if p.requires_grad and p not in probe]}]
        if probe:
            groups.append({"params": list(probe), "lr": hp.probe_lr, "weight_decay": 0.0})
        # fused: one kernel per step, its step counters on the device (the default reads them on the host)
        optimizer = torch.optim.Adam(
            groups, lr=hp.base_lr * global_batch / CAVMAE_BATCH, weight_decay=hp.weight_decay, betas=tuple(hp.betas), fused=True
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        per_epoch = total / max(1, self.trainer.max_epochs or 1)
        warmup = hp.warmup_epochs * per_epoch

        def factor(step: int) -> float:
            epoch = int(step // per_epoch)
            decays = 0 if epoch < hp.lr_decay_start else 1 + (epoch - hp.lr_decay_start) // hp.lr_decay_every
            return min(1.0, (step + 1) / warmup if warmup else 1.0) * hp.lr_decay**decays

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
