"""CAV-MAE against a transcription of the official forward pass, its gradients, settings and optimiser."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from avssl.errors import ConfigError
from avssl.methods import CAVMAE
from avssl.models.backbone import BackboneConfig
from avssl.models.vit import sincos_2d

P = 4  # patch side
BACKBONE = BackboneConfig(encoder="vit", dim=16, depth=2, heads=2, patch_size=P, shared_depth=1, fusion="joint")


def tiny(**kwargs) -> CAVMAE:
    torch.manual_seed(0)
    model = CAVMAE(backbone=BACKBONE, decoder_dim=8, decoder_depth=1, decoder_heads=2, **kwargs)
    model.mask_generator = lambda device: torch.Generator(device).manual_seed(5)  # the trainer's per-batch generator
    return model


def batch(b=3, n=1, frames=1):
    g = torch.Generator().manual_seed(1)
    return {"video": torch.randn(b, n, 3, frames, 8, 12, generator=g), "spec": torch.randn(b, n, 1, 8, 16, generator=g)}


def official_loss(model: CAVMAE, audio: torch.Tensor, imgs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """YuanGongND/cav-mae src/models/cav_mae.py CAVMAE.forward (norm_pix_loss, bidirectional
    contrast), transcribed line by line onto this model's parameters; ``audio`` [M, 1, F, T] is the
    official input after its unsqueeze / transpose, ``imgs`` one frame [M, 3, H, W]."""
    bb, hp = model.backbone, model.hparams
    d = bb.config.dim

    def patchify(imgs, c, h, w, p):
        x = imgs.reshape(shape=(imgs.shape[0], c, h, p, w, p))
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(shape=(imgs.shape[0], h * w, p**2 * c))

    def masking(x, ratio):
        n, length, dim = x.shape
        len_keep = int(length * (1 - ratio))
        noise = torch.rand(n, length, generator=generator)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        x_masked = torch.gather(x, dim=1, index=ids_shuffle[:, :len_keep].unsqueeze(-1).repeat(1, 1, dim))
        mask = torch.ones([n, length])
        mask[:, :len_keep] = 0
        return x_masked, torch.gather(mask, dim=1, index=ids_restore), ids_restore

    ha, wa, hv, wv = audio.shape[2] // P, audio.shape[3] // P, imgs.shape[2] // P, imgs.shape[3] // P
    a = bb.audio.patch_embed.proj(audio).flatten(2).transpose(1, 2) + sincos_2d(d, ha, wa) + bb.audio.modality
    wv_2d = bb.video.patch_embed.proj.weight[:, :, 0]  # a one-frame tubelet is a 2-D patch embedding
    v = F.conv2d(imgs, wv_2d, bb.video.patch_embed.proj.bias, stride=P).flatten(2).transpose(1, 2) + sincos_2d(d, hv, wv)
    v = v + bb.video.modality
    a, mask_a, ids_restore_a = masking(a, hp.mask_ratio_audio)
    v, mask_v, ids_restore_v = masking(v, hp.mask_ratio_video)
    for blk in bb.audio.blocks:
        a = blk(a)
    for blk in bb.video.blocks:
        v = blk(v)
    x = torch.cat((a, v), dim=1)
    for blk in bb.shared:
        x = blk(x)
    x = bb.joint_norm(x)
    ca, cv = a, v
    for blk in bb.shared:
        ca = blk(ca, "audio")
    ca = bb.audio.norm(ca)
    for blk in bb.shared:
        cv = blk(cv, "video")
    cv = bb.video.norm(cv)
    # decoder
    num_a = ha * wa
    dd = hp.decoder_dim
    x = model.decoder_embed(x)
    mask_tokens_a = model.mask_token.repeat(x.shape[0], int(mask_a[0].sum()), 1)
    a_ = torch.cat([x[:, : num_a - int(mask_a[0].sum()), :], mask_tokens_a], dim=1)
    a_ = torch.gather(a_, dim=1, index=ids_restore_a.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    mask_tokens_v = model.mask_token.repeat(x.shape[0], int(mask_v[0].sum()), 1)
    v_ = torch.cat([x[:, num_a - int(mask_a[0].sum()) :, :], mask_tokens_v], dim=1)
    v_ = torch.gather(v_, dim=1, index=ids_restore_v.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    x = torch.cat([a_, v_], dim=1)
    x = x + torch.cat([sincos_2d(dd, ha, wa), sincos_2d(dd, hv, wv)], dim=0)[None]
    x = torch.cat([x[:, :num_a] + model.decoder_modality_a, x[:, num_a:] + model.decoder_modality_v], dim=1)
    for blk in model.decoder_blocks:
        x = blk(x)
    x = model.decoder_norm(x)
    pred_a, pred_v = model.decoder_pred_a(x[:, :num_a, :]), model.decoder_pred_v(x[:, num_a:, :])

    def mae_loss(target, pred, mask):
        mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    loss_mae = mae_loss(patchify(audio, 1, ha, wa, P), pred_a, mask_a) + mae_loss(patchify(imgs, 3, hv, wv, P), pred_v, mask_v)
    audio_rep, video_rep = F.normalize(ca.mean(dim=1), dim=-1), F.normalize(cv.mean(dim=1), dim=-1)
    total = torch.mm(audio_rep, torch.transpose(video_rep, 0, 1)) / hp.temperature
    nce_1 = -torch.mean(torch.diag(F.log_softmax(total, dim=0)))
    nce_2 = -torch.mean(torch.diag(F.log_softmax(total.t(), dim=0)))
    return hp.mae_weight * loss_mae + hp.contrastive_weight * (nce_1 + nce_2) / 2


def test_loss_equals_the_transcribed_official_forward():
    model = tiny(contrastive_weight=0.5)  # a weight at which the contrastive term shows
    views = batch()
    loss, _, _, logs = model.objective(views)
    expected = official_loss(model, views["spec"][:, 0], views["video"][:, 0, :, 0], torch.Generator().manual_seed(5))
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logs["train/ssl_loss"], loss.detach())


def test_the_encoder_sees_only_the_visible_tokens_and_gradients_reach_every_part():
    model = tiny()
    seen = []
    model.decoder_embed.register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    views = batch(b=2, n=2, frames=2)  # audio 2 x 4 = 8 tokens, video 2 frames x 2 x 3 = 12 tokens
    loss, z, features, _ = model.objective(views)
    assert seen == [(4, int(8 * 0.25) + int(12 * 0.25), 16)]  # B * N clips, visible audio + video tokens
    assert z.shape == (2, 4, 16) and features.shape == (2, 2, 16)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not no_grad, no_grad
    assert any(n.startswith("backbone.shared.0.norm1_a") for n, _ in model.named_parameters())


def test_masks_differ_per_sample_and_between_batches():
    model = tiny()
    masks = []
    model.decoder_embed.register_forward_hook(lambda m, args, out: masks.append(args[0].detach().clone()))
    model.objective(batch(b=4))
    model.mask_generator = lambda device: torch.Generator(device).manual_seed(6)
    model.objective(batch(b=4))
    assert not torch.equal(masks[0], masks[1])


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"backbone": BackboneConfig(width=4, layers=(1, 1, 1, 1))}, "encoder vit"),
        ({"backbone": BackboneConfig(encoder="vit", dim=16, depth=1, heads=2)}, "fusion joint"),
        ({"backbone": BACKBONE, "cross_modal_weight": 1.0}, "own contrastive term"),
        ({"backbone": BACKBONE, "mask_ratio_video": 1.0}, "mask_ratio_video"),
    ],
)
def test_settings_it_cannot_train_with_are_named(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        CAVMAE(decoder_dim=8, decoder_depth=1, decoder_heads=2, **kwargs)


def test_optimiser_is_cav_mae_adam_with_its_step_schedule():
    """Adam (5e-7 weight decay, betas 0.95 / 0.999), 5e-5 at batch 48 scaled with the batch,
    halved at epochs 10, 15, 20 of 25."""
    model = tiny()
    model._trainer = SimpleNamespace(
        datamodule=SimpleNamespace(batch_size=96), accumulate_grad_batches=1, estimated_stepping_batches=250, max_epochs=25
    )
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["betas"] == (0.95, 0.999)
    assert optimizer.defaults["weight_decay"] == 5e-7
    lrs = []
    for _ in range(250):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    base = 5e-5 * 96 / 48
    for epoch, factor in ((0, 1), (9, 1), (10, 0.5), (14, 0.5), (15, 0.25), (20, 0.125), (24, 0.125)):
        assert lrs[epoch * 10] == pytest.approx(base * factor) and lrs[epoch * 10 + 9] == pytest.approx(base * factor), epoch
