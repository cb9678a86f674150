"""Every method on the shared base: heads, losses, EMA target, MoCo queue, cross-modal term."""

import pytest
import torch

from avssl.errors import ConfigError
from avssl.losses import barlow_twins_loss, byol_loss, cross_modal_nce, info_nce, moco_loss, simsiam_loss, vicreg_loss
from avssl.methods import BYOL, BarlowTwins, CrossModal, MoCoV3, MomentumTarget, SimCLR, SimSiam, Supervised, VICReg, momentum_schedule
from avssl.models.backbone import BackboneConfig
from tests.methods.test_simclr import fake_trainer

SMALL = dict(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), num_classes=3)
HEADS = {
    SimCLR: dict(proj_hidden_dim=16, proj_dim=8),
    MoCoV3: dict(proj_hidden_dim=16, proj_dim=8, queue_size=10),
    BYOL: dict(proj_hidden_dim=16, proj_dim=8),
    SimSiam: dict(proj_hidden_dim=16, proj_dim=8, pred_hidden_dim=4),
    Supervised: dict(),
    VICReg: dict(proj_hidden_dim=16, proj_dim=8),
    BarlowTwins: dict(proj_hidden_dim=16, proj_dim=8),
    CrossModal: dict(proj_hidden_dim=16, proj_dim=8),
}


def build(cls, **kw):
    return cls(**{**SMALL, **HEADS[cls], **kw})


def batch(b=4, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "video": torch.randn(b, n, 3, 4, 16, 16, generator=g),
        "spec": torch.randn(b, n, 1, 16, 32, generator=g),
        "label": torch.arange(b) % 3,
        "index": torch.arange(b) + 100 * seed,
    }


@pytest.mark.parametrize("cls", list(HEADS))
def test_training_step_trains_the_online_encoder_only(cls):
    m = build(cls)
    m.log_dict = m.log = lambda *a, **k: None
    loss = m.training_step(batch(), 0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.backbone.parameters())
    if getattr(m, "target", None) is not None:
        assert all(p.grad is None and not p.requires_grad for p in m.target.parameters())
    fake_trainer(m)
    groups = m.configure_optimizers()["optimizer"].param_groups
    trained = {id(p) for g in groups for p in g["params"]}
    assert trained == {id(p) for p in m.parameters() if p.requires_grad}  # the target is not optimised


def test_mocov3_loss_is_symmetric_ctr_against_target_keys_and_queue():
    m = build(MoCoV3).eval()
    x = batch()
    feats = m.encode(x["video"], x["spec"])
    queue_before = torch.randn(10, 8)
    m.queue.copy_(queue_before)
    m.queue_len.fill_(10)
    loss, z = m.ssl_loss(feats, x)
    q = m.predictor(m.projector(feats.flatten(0, 1))).view(4, 2, -1)
    k = m.target_projections(x)
    expected = moco_loss(q[:, 0], k[:, 1], 0.2, queue=queue_before) + moco_loss(q[:, 1], k[:, 0], 0.2, queue=queue_before)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(m.queue[:4], k[:, 0])  # first-view keys enqueued after the loss
    assert m.queue_ids[:4].tolist() == x["index"].tolist()  # with their videos' indices
    assert int(m.queue_ptr) == 4 and not m.queue.requires_grad


def test_mocov3_never_uses_a_key_of_the_querys_own_video_as_a_negative():
    """A queue larger than the dataset holds keys of every video from the previous epoch: the loss
    equals the loss with those keys removed from the queue."""
    m = build(MoCoV3, queue_size=10).eval()
    x = batch()  # videos 0..3
    feats = m.encode(x["video"], x["spec"])
    queue = torch.randn(10, 8)
    ids = torch.tensor([2, 7, 0, 9, 1, 3, 8, 2, 6, 5])  # six slots hold keys of this batch's videos
    m.queue.copy_(queue)
    m.queue_ids.copy_(ids)
    m.queue_len.fill_(10)
    loss, _ = m.ssl_loss(feats, x)
    q = m.predictor(m.projector(feats.flatten(0, 1))).view(4, 2, -1)
    k = m.target_projections(x)
    expected = 0
    for i, j in ((0, 1), (1, 0)):
        for row in range(4):  # each query against the queue without its own video's keys
            keep = ids != row
            expected = expected + moco_loss(q[row : row + 1, i], k[:, j], 0.2, queue=queue[keep], offset=row) / 4
    torch.testing.assert_close(loss, expected)
    # without the ids the same-video keys would be counted as negatives: a different loss
    unmasked = moco_loss(q[:, 0], k[:, 1], 0.2, queue=queue) + moco_loss(q[:, 1], k[:, 0], 0.2, queue=queue)
    assert not torch.allclose(loss, unmasked)


def test_byol_and_simsiam_losses():
    x = batch()
    m = build(BYOL).eval()
    feats = m.encode(x["video"], x["spec"])
    loss, _ = m.ssl_loss(feats, x)
    p = m.predictor(m.projector(feats.flatten(0, 1))).view(4, 2, -1)
    t = m.target_projections(x)
    torch.testing.assert_close(loss, byol_loss(p[:, 0], t[:, 1]) + byol_loss(p[:, 1], t[:, 0]))
    s = build(SimSiam).eval()
    feats = s.encode(x["video"], x["spec"])
    loss, _ = s.ssl_loss(feats, x)
    z = s.projector(feats.flatten(0, 1))
    p = s.predictor(z).view(4, 2, -1)
    z = z.view(4, 2, -1)
    torch.testing.assert_close(loss, (simsiam_loss(p[:, 0], z[:, 1]) + simsiam_loss(p[:, 1], z[:, 0])) / 2)


def test_queue_wraps_around_and_keeps_the_newest_keys():
    m = build(MoCoV3)  # queue_size 10, proj_dim 8
    keys = torch.arange(32.0).view(4, 8)
    for step in range(3):  # 12 keys into 10 slots
        m.enqueue(keys + 100 * step)
    assert int(m.queue_len) == 10 and int(m.queue_ptr) == 2
    torch.testing.assert_close(m.queue[:2], keys[2:] + 200)  # slots 0, 1 overwritten by the third write
    torch.testing.assert_close(m.queue[2:4], keys[2:] + 0)
    m.enqueue(torch.ones(25, 8))  # more keys than slots: the last 10 stay
    assert int(m.queue_len) == 10 and torch.equal(m.queue, torch.ones(10, 8))
    empty = build(MoCoV3, queue_size=0)
    empty.enqueue(keys)
    assert empty.queue.shape == (0, 8)


def test_queue_and_target_survive_a_checkpoint_round_trip():
    m = build(MoCoV3)
    m.enqueue(torch.randn(6, 8))
    m.target.update(m.online_modules(), 0.0)
    with torch.no_grad():
        for p in m.target.parameters():
            p.add_(1.0)
    restored = build(MoCoV3)
    restored.load_state_dict(m.state_dict())
    for k, v in m.state_dict().items():
        assert torch.equal(v, restored.state_dict()[k]), k
    assert int(restored.queue_len) == 6


def test_ema_endpoints():
    online = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    target = MomentumTarget({"net": online})
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    target.update({"net": online}, tau=1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, target.parameters()))
    target.update({"net": online}, tau=0.0)
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))
    target.update({"net": online}, tau=0.5)  # unchanged: already equal
    with torch.no_grad():
        for p in online.parameters():
            p.add_(2.0)
    old = [p.clone() for p in target.parameters()]
    target.update({"net": online}, tau=0.75)
    for t, o, po in zip(target.parameters(), old, online.parameters()):
        torch.testing.assert_close(t, 0.75 * o + 0.25 * po)
    with pytest.raises(ValueError, match="expected modules"):
        target.update({"other": online}, 0.5)


def test_momentum_schedule_cosine_from_base_to_end():
    assert momentum_schedule(0, 100, 0.99) == pytest.approx(0.99)
    assert momentum_schedule(100, 100, 0.99) == 1.0 and momentum_schedule(150, 100, 0.99) == 1.0
    assert momentum_schedule(50, 100, 0.996) == pytest.approx(0.998)
    values = [momentum_schedule(s, 100, 0.99) for s in range(101)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_optimizer_step_moves_the_target_with_the_scheduled_momentum():
    m = build(BYOL)
    fake_trainer(m, steps=10)
    m.log = lambda *a, **k: None
    with torch.no_grad():
        for p in m.backbone.parameters():
            p.add_(1.0)
    old = [p.clone() for p in m.target["backbone"].parameters()]
    tau = momentum_schedule(0, 10, 0.996)
    # LightningModule.optimizer_step calls optimizer.step(closure); a parameter without gradient: no-op
    m.trainer.global_step = 0  # read by LightningModule.global_step
    m.optimizer_step(0, 0, torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), lambda: None)
    for t, o, p in zip(m.target["backbone"].parameters(), old, m.backbone.parameters()):
        torch.testing.assert_close(t, tau * o + (1 - tau) * p)


@pytest.mark.parametrize("cross_modal, stream", [(0.5, 0.0), (0.0, 0.7), (0.5, 0.7)])
def test_cross_modal_and_per_stream_terms_are_added_and_train_both_projectors(cross_modal, stream):
    m = build(SimCLR, cross_modal_weight=cross_modal, stream_weight=stream, stream_dim=6, stream_hidden_dim=8).eval()
    logged = {}
    m.log_dict = lambda d, **k: logged.update(d)
    x = batch()
    streams = m.encode_streams(x["video"], x["spec"])
    ssl, _ = m.ssl_loss(streams["fused"], x)
    zv = m.stream_projectors["video"](streams["video"].flatten(0, 1)).view(4, 2, -1)
    za = m.stream_projectors["audio"](streams["audio"].flatten(0, 1)).view(4, 2, -1)
    xm = (cross_modal_nce(za[:, 0], zv[:, 0]) + cross_modal_nce(za[:, 1], zv[:, 1])) / 2  # each view: audio <-> its video
    per_stream = (info_nce(za[:, 0], za[:, 1]) + info_nce(zv[:, 0], zv[:, 1])) / 2  # each stream: view 1 <-> view 2
    loss = m.training_step(x, 0)
    probe_loss = m.probe(streams["fused"][:, 0], x["label"])[0]
    torch.testing.assert_close(loss, ssl + cross_modal * xm + stream * per_stream + probe_loss)
    if cross_modal:
        torch.testing.assert_close(logged["train/xmodal_loss"], xm.detach())
    if stream:
        torch.testing.assert_close(logged["train/stream_loss"], per_stream.detach())
    loss.backward()
    assert all(p.grad is not None for p in m.stream_projectors.parameters())
    assert build(SimCLR).stream_projectors is None  # both weights 0: the paper's setup, no extra modules


@pytest.mark.parametrize("head", ["linear", "none"])
def test_the_stream_head_option_changes_only_the_terms_projectors(head):
    m = build(SimCLR, cross_modal_weight=1.0, stream_head=head, stream_dim=6).eval()
    projector = m.stream_projectors["video"]
    assert isinstance(projector, torch.nn.Linear if head == "linear" else torch.nn.Identity)
    x = batch()
    streams = m.encode_streams(x["video"], x["spec"])
    z = projector(streams["video"].flatten(0, 1))
    assert z.shape[1] == (6 if head == "linear" else streams["video"].shape[-1])
    if head == "none":  # the term compares the encoders' pooled features themselves
        logged = {}
        m.log_dict = lambda d, **k: logged.update(d)
        m.training_step(x, 0)
        xm = sum(cross_modal_nce(streams["audio"][:, i], streams["video"][:, i]) for i in range(2)) / 2
        torch.testing.assert_close(logged["train/xmodal_loss"], xm.detach())
    assert isinstance(build(SimCLR, cross_modal_weight=1.0).stream_projectors["video"], torch.nn.Sequential)  # default: the MLP
    with pytest.raises(ConfigError, match="stream_head must be one of mlp, linear, none"):
        build(SimCLR, cross_modal_weight=1.0, stream_head="conv")


def test_invalid_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="num_classes"):
        Supervised(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), num_classes=0)
    with pytest.raises(ConfigError, match="base_momentum"):
        build(BYOL, base_momentum=1.5)
    with pytest.raises(ConfigError, match="queue_size"):
        build(MoCoV3, queue_size=-1)
    with pytest.raises(ConfigError, match="cross_modal_weight"):
        build(SimCLR, cross_modal_weight=-1.0)


def test_a_method_takes_its_views_from_the_data_module_it_is_fitted_on():
    """A method makes its own views from the data module's view settings (setup); without a data
    module there are none to make: a ConfigError naming what to pass, not an error mid-step."""
    from types import SimpleNamespace

    from avssl.augment.pipeline import AugmentConfig
    from avssl.augment.views import ViewSpec

    model = build(SimCLR)
    model.trainer = SimpleNamespace(datamodule=None)
    with pytest.raises(ConfigError, match=r"SimCLR takes its clips and their view settings from an AVDataModule"):
        model.setup("fit")
    spec = ViewSpec(16000, AugmentConfig(crop_size=24), eval_crops=3)
    model.trainer = SimpleNamespace(datamodule=SimpleNamespace(views=spec))
    model.setup("fit")
    assert model.view_spec is spec and model.views.cfg.crop_size == 24 and spec.eval_positions == (0.0, 0.5, 1.0)
    assert not any(k.startswith("views.") for k in model.state_dict())  # no checkpoint keys: 0.2 checkpoints still load


def test_vicreg_and_barlow_twins_losses_over_the_projections():
    x = batch()
    for cls, loss_fn in ((VICReg, vicreg_loss), (BarlowTwins, barlow_twins_loss)):
        m = build(cls).eval()
        feats = m.encode(x["video"], x["spec"])
        loss, z = m.ssl_loss(feats, x)
        expected = m.projector(feats.flatten(0, 1)).view(4, 2, -1)
        torch.testing.assert_close(z, expected)
        torch.testing.assert_close(loss, loss_fn(expected[:, 0], expected[:, 1]), msg=cls.__name__)
    # the heads as the official code builds them: biases before BN in VICReg only, none in the last layer
    vicreg, barlow = build(VICReg).projector, build(BarlowTwins).projector
    assert [type(m).__name__ for m in vicreg] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    assert vicreg[0].bias is not None and vicreg[3].bias is not None and vicreg[6].bias is None
    assert [type(m).__name__ for m in barlow] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    assert all(layer.bias is None for layer in barlow if isinstance(layer, torch.nn.Linear))
    m = build(VICReg, sim_weight=1.0, var_weight=0.0, cov_weight=0.0).eval()  # the weights reach the loss
    feats = m.encode(x["video"], x["spec"])
    z = m.projector(feats.flatten(0, 1)).view(4, 2, -1)
    torch.testing.assert_close(m.ssl_loss(feats, x)[0], torch.nn.functional.mse_loss(z[:, 0], z[:, 1]))


@pytest.mark.parametrize("positive", ["same_clip", "other_clip"])
@pytest.mark.parametrize("audio_weight, video_weight", [(0.0, 0.0), (0.5, 0.25)])
def test_cross_modal_loss_pairs_audio_with_video(positive, audio_weight, video_weight):
    m = build(CrossModal, positive=positive, audio_weight=audio_weight, video_weight=video_weight, temperature=0.2).eval()
    x = batch()
    streams = m.encode_streams(x["video"], x["spec"])
    loss, z = m.ssl_loss(streams["fused"], x)
    za = m.projectors["audio"](streams["audio"].flatten(0, 1)).view(4, 2, -1)
    zv = m.projectors["video"](streams["video"].flatten(0, 1)).view(4, 2, -1)
    pairs = [(0, 0), (1, 1)] if positive == "same_clip" else [(0, 1), (1, 0)]
    expected = sum(cross_modal_nce(za[:, i], zv[:, j], 0.2) for i, j in pairs) / 2
    expected = expected + audio_weight * info_nce(za[:, 0], za[:, 1], 0.2) + video_weight * info_nce(zv[:, 0], zv[:, 1], 0.2)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(z, torch.cat([za, zv], dim=1))


def test_cross_modal_trains_each_encoder_only_through_the_other_stream():
    """No fused head: the video encoder's gradient comes from the audio-video term alone."""
    m = build(CrossModal, num_classes=0)
    x = batch()
    loss, _ = m.ssl_loss(m.encode(x["video"], x["spec"]), x)
    loss.backward()
    assert all(p.grad is not None for p in m.backbone.video.parameters() if p.requires_grad)
    assert all(p.grad is not None for p in m.backbone.audio.parameters() if p.requires_grad)


def test_new_method_settings_are_checked():
    with pytest.raises(ConfigError, match="model.positive must be one of same_clip, other_clip"):
        build(CrossModal, positive="next")
    with pytest.raises(ConfigError, match="model.audio_weight must be >= 0"):
        build(CrossModal, audio_weight=-1.0)
    with pytest.raises(ConfigError, match="model.temperature must be > 0"):
        build(CrossModal, temperature=0.0)
