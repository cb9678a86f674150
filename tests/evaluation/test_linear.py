"""Linear / kNN evaluation: multi-view aggregation, exact counts, frozen encoder, all modes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from avssl.augment.pipeline import AugmentConfig
from avssl.data.datamodule import AVDataModule
from avssl.errors import ConfigError
from avssl.evaluation.knn import knn_predict
from avssl.evaluation.linear import LinearProbe, ProbeHead, format_table, train_linear
from avssl.evaluation.multiview import PredictionStore, mean_softmax, topk_accuracy
from avssl.models.backbone import TwoStreamBackbone
from tests.conftest import TINY

ARCH = dict(width=4, layers=(1, 1, 1, 1))


def test_mean_of_softmax_not_of_logits():
    # one confident view for class 0, two moderate views for class 1
    logits = torch.tensor([[[10.0, 0.0], [0.0, 2.0], [0.0, 2.0]]])
    probs = mean_softmax(logits)
    torch.testing.assert_close(probs, logits.softmax(-1).mean(1))
    assert probs.argmax(1).item() == 1 and logits.mean(1).argmax(1).item() == 0
    torch.testing.assert_close(probs.sum(1), torch.ones(1))


def test_ties_go_to_the_lower_class_index():
    probs = torch.tensor([[0.4, 0.4, 0.2], [0.1, 0.45, 0.45]])
    assert topk_accuracy(probs, torch.tensor([0, 1]), 1) == 100.0
    assert topk_accuracy(probs, torch.tensor([1, 2]), 1) == 0.0
    assert topk_accuracy(probs, torch.tensor([1, 2]), 2) == 100.0


def test_prediction_store_keeps_one_row_per_video():
    store = PredictionStore()
    store.add(torch.tensor([3, 0, 1]), torch.tensor([1, 0, 1]), {"a": torch.eye(3)})
    store.add(torch.tensor([2, 3]), torch.tensor([0, 1]), {"a": torch.full((2, 3), 0.5)})  # 3 again: sampler padding
    index, labels, probs = store.collect()
    assert index.tolist() == [0, 1, 2, 3] and labels.tolist() == [0, 1, 0, 1]
    torch.testing.assert_close(probs["a"][3], torch.tensor([1.0, 0.0, 0.0]))  # the first prediction of video 3 is kept


def test_knn_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    bank, labels, query = torch.randn(30, 5, generator=g), torch.randint(0, 4, (30,), generator=g), torch.randn(7, 5, generator=g)
    got = knn_predict(query, bank, labels, 4, k=6, temperature=0.1, chunk_size=3)
    for i, q in enumerate(query):
        sims = F.cosine_similarity(q[None], bank)
        top = sims.topk(6)
        votes = torch.zeros(4)
        for s, j in zip(top.values, top.indices):
            votes[labels[j]] += torch.exp(s / 0.1)
        torch.testing.assert_close(got[i], votes / votes.sum(), rtol=1e-5, atol=1e-6)
    # identical point in the bank with k = 1: its label with probability 1
    assert knn_predict(bank[:4], bank, labels, 4, k=1).argmax(1).tolist() == labels[:4].tolist()


def test_probe_heads_learn_separable_features():
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(60) % 3
    feats = F.one_hot(labels, 3).float() * 3 + 0.3 * torch.randn(60, 3, generator=g)
    for normalize in ("l2", "bn"):
        head = train_linear(feats, labels, 3, epochs=30, batch_size=16, base_lr=30, seed=0, normalize=normalize)
        assert not head.training
        assert (head(feats).argmax(1) == labels).float().mean() == 1.0
    with pytest.raises(ConfigError, match="normalize"):
        ProbeHead(3, 2, "zscore")


def test_table_rows_per_encoder_and_mode():
    table = format_table({"pretrained/cached/fused": {"top1": 50.0, "top5": 90.0}, "chance/fused": {"top1": 12.5, "top5": 62.5}})
    assert "| pretrained | cached | 50.0 | 90.0 | - | - | - | - |" in table and "| chance | - | 12.5 | 62.5 |" in table


def test_invalid_options():
    with pytest.raises(ConfigError, match="model.modes"):
        LinearProbe(num_classes=4, modes=["cached", "svm"], **ARCH)
    with pytest.raises(ConfigError, match="knn_k"):
        LinearProbe(num_classes=4, knn_k=0, **ARCH)


def fake_checkpoint(path):
    """A pre-training checkpoint with non-trivial BatchNorm statistics (to catch any update)."""
    torch.manual_seed(3)
    backbone = TwoStreamBackbone(**ARCH)
    with torch.no_grad():
        for name, buf in backbone.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    state = {f"backbone.{k}": v.clone() for k, v in backbone.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"width": 4, "layers": [1, 1, 1, 1]}}, path)
    return {k.removeprefix("backbone."): v for k, v in state.items()}


def tiny_data(root, **kw):
    return AVDataModule(
        synthetic=TINY,
        synthetic_root=str(root),
        batch_size=4,
        num_workers=0,
        short_side=40,
        sample_rate=16000,
        eval_clips=2,
        eval_crops=2,
        augment=AugmentConfig(crop_size=32, **kw),
    )


def test_all_modes_leave_the_encoder_bit_identical(tiny_root, tmp_path):
    expected = fake_checkpoint(tmp_path / "enc.ckpt")
    data = tiny_data(tiny_root)
    probe = LinearProbe(
        str(tmp_path / "enc.ckpt"),
        num_classes=4,
        modes=["cached", "full", "knn"],
        epochs=2,
        train_clips=2,
        knn_k=3,
        output_dir=str(tmp_path),
    )
    pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False).test(probe, data)
    for k, v in probe.encoders["pretrained"].state_dict().items():
        assert torch.equal(v, expected[k]), k
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["num_test_videos"] == 8
    for mode in ("cached", "full", "knn"):
        for readout in ("fused", "audio", "video"):
            assert 0 <= results["metrics"][f"pretrained/{mode}/{readout}"]["top1"] <= 100
    assert set(probe.heads) == {f"pretrained/{m}/{r}" for m in ("cached", "full") for r in ("fused", "audio", "video")}


def test_full_mode_trains_on_views_without_temporal_augmentation(tiny_root):
    data = tiny_data(tiny_root)
    assert data.transform.cfg.temporal  # RE by default in pre-training
    assert data.transform.domain_only().cfg.temporal == [] and data.transform.cfg.temporal


def test_eval_crop_size_sets_the_test_crops(tiny_root):
    data = tiny_data(tiny_root, eval_crop_size=40)
    batch = next(iter(data.loader(data.dataset("test", train=False), shuffle=False)))
    views = data.transform.eval_views(batch, data.eval_positions)
    assert views["video"].shape[-2:] == (40, 40) and views["video"].shape[1] == 2 * 2  # clips x crops


def test_ddp_counts_every_test_video_once(tiny_root, tmp_path):
    """2 CPU processes (gloo) on a 5-video test split: the distributed sampler pads it to 6, the
    results must still count 5 videos."""
    rows = list(csv.DictReader(open(tiny_root / "manifest.csv")))
    test_rows = [r for r in rows if r["split"] == "test"][:5]
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "split"])
        writer.writeheader()
        for r in [*(r for r in rows if r["split"] == "train"), *test_rows]:
            writer.writerow({"path": str(tiny_root / r["path"]), "label": r["label"], "split": r["split"]})
    fake_checkpoint(tmp_path / "enc.ckpt")
    args = [
        "test",
        "--config=configs/linear.yaml",
        "--config=configs/demo_linear.yaml",
        f"--data.root={tmp_path}",
        "--data.num_workers=0",
        "--data.batch_size=2",
        "--data.eval_clips=2",
        f"--model.encoder_ckpt={tmp_path / 'enc.ckpt'}",
        "--model.init_args.modes=[cached, knn]",
        "--model.init_args.epochs=2",
        "--model.init_args.train_clips=1",
        "--model.init_args.baselines=false",
        f"--model.init_args.output_dir={tmp_path / 'out'}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "avssl", *args], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["world_size"] == 2 and results["num_test_videos"] == 5
