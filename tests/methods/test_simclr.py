from types import SimpleNamespace

import pytest
import torch

from avssl.losses import info_nce
from avssl.methods import SimCLR
from avssl.models.backbone import BackboneConfig


def model(**kw):
    return SimCLR(backbone=BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=16, proj_dim=8, num_classes=3, **kw)


def fake_trainer(m, batch_size=64, epochs=10, steps=100):
    trainer = SimpleNamespace(
        datamodule=SimpleNamespace(batch_size=batch_size), accumulate_grad_batches=1, estimated_stepping_batches=steps, max_epochs=epochs
    )
    m._trainer = trainer  # what Trainer.fit attaches
    return trainer


def test_optimizer_scales_lr_and_skips_decay_on_bias_and_norm():
    m = model(base_lr=0.1, weight_decay=1e-4, warmup_epochs=2)
    fake_trainer(m, batch_size=64)
    config = m.configure_optimizers()
    opt = config["optimizer"]
    decay, no_decay, probe = opt.param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0 and probe["weight_decay"] == 0.0
    assert decay["initial_lr"] == pytest.approx(0.1 * 64 / 256)
    assert all(p.dim() > 1 for p in decay["params"])  # conv / linear weights only
    assert all(p.dim() == 1 for p in no_decay["params"])  # biases and BN affine parameters
    n_params = sum(1 for _ in m.parameters())
    assert len(decay["params"]) + len(no_decay["params"]) + len(probe["params"]) == n_params
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 64 / 256 / 20)  # step 0 of a 20-step warm-up


def test_ssl_loss_is_info_nce_of_the_projections():
    m = model().eval()
    feats = torch.randn(4, 2, m.backbone.out_dim)
    loss, z = m.ssl_loss(feats, {})
    assert z.shape == (4, 2, 8)
    torch.testing.assert_close(loss, info_nce(z[:, 0], z[:, 1], 0.1))


def test_training_step_updates_encoder_and_probe_is_detached():
    m = model()
    batch = {"video": torch.randn(3, 2, 3, 4, 16, 16), "spec": torch.randn(3, 2, 1, 16, 32), "label": torch.tensor([0, 1, -1])}
    m.log_dict = lambda *a, **k: None
    features = m.encode(batch["video"], batch["spec"])
    probe_loss, logs = m.probe(features[:, 0], batch["label"])
    probe_loss.backward()
    assert all(p.grad is None for p in m.backbone.parameters())  # probe sees detached features
    loss = m.training_step(batch, 0)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.backbone.parameters())
    assert 0 <= logs["top1"] <= 1
