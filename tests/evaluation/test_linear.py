"""Linear / kNN evaluation: multi-view aggregation, exact counts, frozen encoder, every mode on
Lightning's loops, the paper's optimiser, resume, DDP, and the encoder's data settings."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import asdict

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from avssl.augment.audio import SpectrogramConfig
from avssl.augment.pipeline import AugmentConfig
from avssl.cli import main
from avssl.data.datamodule import AVDataModule
from avssl.data.formats import PrepareConfig
from avssl.errors import ConfigError
from avssl.evaluation import LinearProbe, linear_evaluation
from avssl.evaluation.base import probe_views
from avssl.evaluation.knn import knn_predict
from avssl.evaluation.multiview import PredictionStore, mean_softmax, topk_accuracy
from avssl.evaluation.results import format_table
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone
from avssl.prepare.shards import write_store
from avssl.spec import InputSpec
from avssl.utils.plain import plain
from avssl.workflows.linear import FeatureDataset
from tests.conftest import TINY

ARCH = BackboneConfig(width=4, layers=(1, 1, 1, 1))
READOUTS = ("fused", "audio", "video")


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


def separable_features(n=60, classes=3):
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(n) % classes
    backbone = TwoStreamBackbone(ARCH)
    dims = {"fused": backbone.out_dim, "audio": backbone.audio.out_dim, "video": backbone.video.out_dim}
    feats = {f"random-init/{r}": 0.3 * torch.randn(n, d, generator=g) for r, d in dims.items()}
    for v in feats.values():
        v[:, :classes] += F.one_hot(labels, classes).float() * 3
    # a random-init probe has two encoders (statistics re-estimated, and initial): features for each
    feats.update({f"random-init-initial-bn/{r}": feats[f"random-init/{r}"] for r in dims})
    return feats, labels


@pytest.mark.parametrize("normalize", ["l2", "bn"])
def test_probe_trained_by_lightning_separates_separable_features(normalize):
    feats, labels = separable_features()
    probe = LinearProbe(num_classes=3, random_init=True, normalize=normalize, backbone=ARCH)
    probe.batch_size = 16
    loader = DataLoader(FeatureDataset(feats, labels), batch_size=16, shuffle=True)
    pl.Trainer(max_epochs=30, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False).fit(probe, loader)
    for key, head in probe.heads.items():
        assert (head.eval()(feats[key]).argmax(1) == labels).float().mean() == 1.0, key


def test_probe_optimiser_is_sgd_lr_30_per_256_momentum_09_no_decay_cosine():
    feats, labels = separable_features(n=64)
    probe = LinearProbe(num_classes=3, random_init=True, backbone=ARCH)
    seen = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    for batch, lr in ((64, 30 * 64 / 256), (16, 30 * 16 / 256)):
        probe.batch_size, seen[:] = batch, []
        loader = DataLoader(FeatureDataset(feats, labels), batch_size=batch)
        trainer = pl.Trainer(
            max_epochs=4, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[Record()]
        )
        trainer.fit(probe, loader)
        group = trainer.optimizers[0].param_groups[0]
        assert isinstance(trainer.optimizers[0], torch.optim.SGD) and group["momentum"] == 0.9 and group["weight_decay"] == 0.0
        assert seen[0] == pytest.approx(lr) and seen[-1] < seen[0] / 2  # cosine decay over the run


def test_table_says_which_mode_and_whether_it_is_the_papers():
    results = {"pretrained/cached/fused": {"top1": 50.0, "top5": 90.0}, "chance/fused": {"top1": 12.5, "top5": 62.5}}
    table = format_table(results, mode="cached")
    assert "| pretrained | cached | 50.0 | 90.0 | - | - | - | - |" in table and "| chance | - | 12.5 | 62.5 |" in table
    assert "fast mode, not the paper's protocol" in table
    assert "paper (section 3.4)" in format_table({"pretrained/full/fused": {"top1": 1.0, "top5": 2.0}}, mode="full")


def test_invalid_options():
    with pytest.raises(ConfigError, match="model.mode"):
        LinearProbe(num_classes=4, random_init=True, mode="svm", backbone=ARCH)
    with pytest.raises(ConfigError, match="knn_k"):
        LinearProbe(num_classes=4, random_init=True, knn_k=0, backbone=ARCH)
    with pytest.raises(ConfigError, match="normalize"):
        LinearProbe(num_classes=4, random_init=True, normalize="zscore", backbone=ARCH)


def fake_checkpoint(path, data: AVDataModule | None = None):
    """A pre-training checkpoint with non-trivial BatchNorm statistics (to catch any update), and
    the data module's settings when ``data`` is given."""
    torch.manual_seed(3)
    backbone = TwoStreamBackbone(ARCH)
    with torch.no_grad():
        for name, buf in backbone.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    state = {f"backbone.{k}": v.clone() for k, v in backbone.state_dict().items()}
    ckpt = {"state_dict": state, "hyper_parameters": {"backbone": {"width": 4, "layers": [1, 1, 1, 1]}}}
    if data is not None:
        ckpt["datamodule_hyper_parameters"] = dict(data.hparams)
    torch.save(ckpt, path)
    return {k.removeprefix("backbone."): v for k, v in state.items()}


def tiny_data(root, batch_size=4, **kw):
    return AVDataModule(
        synthetic=TINY,
        synthetic_root=str(root),
        batch_size=batch_size,
        num_workers=0,
        short_side=40,
        sample_rate=16000,
        eval_clips=2,
        eval_crops=2,
        augment=AugmentConfig(crop_size=32, **kw),
    )


def trainer(tmp_path, epochs=2, **kw):
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=str(tmp_path), **kw)


@pytest.mark.parametrize("mode", ["full", "cached", "knn"])
def test_every_mode_leaves_the_encoder_bit_identical_and_reports_its_mode(mode, tiny_root, tmp_path):
    expected = fake_checkpoint(tmp_path / "enc.ckpt")
    probe = LinearProbe(str(tmp_path / "enc.ckpt"), num_classes=4, mode=mode, train_clips=2, knn_k=3, output_dir=str(tmp_path))
    linear_evaluation(trainer(tmp_path, enable_checkpointing=False), probe, tiny_data(tiny_root))
    for k, v in probe.encoders["pretrained"].state_dict().items():
        assert torch.equal(v, expected[k]), k
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["num_test_videos"] == 8 and results["mode"] == mode
    assert set(results["metrics"]) == {f"pretrained/{mode}/{r}" for r in READOUTS}
    assert ("fast mode" in results["protocol"]) == (mode != "full")


def test_full_mode_trains_on_domain_only_views_at_the_test_crop_size(tiny_root, tmp_path):
    fake_checkpoint(tmp_path / "enc.ckpt")
    data = tiny_data(tiny_root, eval_crop_size=40)
    assert data.views.augment.temporal and data.views.augment.crop_size == 32  # RE and 32-px crops in pre-training
    views = probe_views(data.views)
    assert views.cfg.temporal == [] and views.cfg.crop_size == 40
    shapes = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            shapes.append(tuple(batch["video"].shape))

        def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
            shapes.append(tuple(batch["video"].shape))

    probe = LinearProbe(str(tmp_path / "enc.ckpt"), num_classes=4, output_dir=str(tmp_path))
    linear_evaluation(trainer(tmp_path, epochs=1, callbacks=[Record()], enable_checkpointing=False), probe, data)
    assert shapes[0][1:] == (1, 3, 8, 40, 40)  # one clip per video, at the test crop size
    assert shapes[-1][1:] == (2 * 2, 3, 8, 40, 40)  # test: 2 clips x 2 crops


def test_probe_resumes_to_the_same_classifiers_and_its_checkpoint_holds_no_encoder(tiny_root, tmp_path):
    fake_checkpoint(tmp_path / "enc.ckpt")

    class StopAfterOneEpoch(pl.Callback):  # an interruption at the first epoch's end
        def on_train_epoch_end(self, trainer, module):
            trainer.should_stop = True

    def run(ckpt_dir, ckpt_path=None, interrupt=False):
        probe = LinearProbe(str(tmp_path / "enc.ckpt"), num_classes=4, output_dir=str(tmp_path), baselines=True)
        callbacks = [pl.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0)]
        callbacks += [StopAfterOneEpoch()] if interrupt else []
        linear_evaluation(trainer(tmp_path, epochs=3, callbacks=callbacks), probe, tiny_data(tiny_root), ckpt_path=ckpt_path)
        return probe

    straight = run(tmp_path / "a")
    run(tmp_path / "b", interrupt=True)  # interrupted after one of three epochs ...
    resumed = run(tmp_path / "b", ckpt_path=str(tmp_path / "b" / "last.ckpt"))  # ... and resumed
    for key, value in straight.heads.state_dict().items():
        assert torch.equal(value, resumed.heads.state_dict()[key]), key
    saved = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)
    assert not any(k.startswith("encoders.") for k in saved["state_dict"]) and saved["encoder_sha256"]
    other = tmp_path / "other.ckpt"
    torch.save({**torch.load(tmp_path / "enc.ckpt", weights_only=True), "extra": 1}, other)  # another file: another hash
    with pytest.raises(ConfigError, match="another encoder"):
        probe = LinearProbe(str(other), num_classes=4, output_dir=str(tmp_path), baselines=True)
        linear_evaluation(trainer(tmp_path, epochs=3), probe, tiny_data(tiny_root), ckpt_path=str(tmp_path / "b" / "last.ckpt"))


def split_root(tiny_root, tmp_path, test_videos):
    """The tiny dataset with its test split cut to ``test_videos`` videos."""
    rows = list(csv.DictReader(open(tiny_root / "manifest.csv")))
    test_rows = [r for r in rows if r["split"] == "test"][:test_videos]
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "split"])
        writer.writeheader()
        for r in [*(r for r in rows if r["split"] == "train"), *test_rows]:
            writer.writerow({"path": str(tiny_root / r["path"]), "label": r["label"], "split": r["split"]})
    return sum(r["split"] == "train" for r in rows)


@pytest.mark.parametrize("mode", ["cached", "full"])
def test_ddp_shards_the_work_and_counts_every_video_once(mode, tiny_root, tmp_path):
    """2 CPU processes (gloo) on a 5-video test split: the distributed sampler pads it to 6, the
    results must still count 5 videos; the cached features are extracted in shards and gathered
    into one row per training video."""
    train_videos = split_root(tiny_root, tmp_path, test_videos=5)
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
        f"--model.init_args.mode={mode}",
        "--trainer.max_epochs=2",
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
    assert results["num_train_videos"] == train_videos


# ---------------------------------------------------------------- the encoder's data settings
def pretrained_with(tmp_path, tiny_root, **data_kw):
    data = AVDataModule(
        synthetic=TINY,
        synthetic_root=str(tiny_root),
        short_side=40,
        augment=AugmentConfig(crop_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.25)),
        **data_kw,
    )
    fake_checkpoint(tmp_path / "enc.ckpt", data)
    return tmp_path / "enc.ckpt"


TEST = ["test", "--config=configs/linear.yaml", "--config=configs/demo_linear.yaml", "--data.num_workers=0", "--data.batch_size=4"]


def run_test(tmp_path, ckpt, *extra):
    out = tmp_path / "out"
    main(
        [
            *TEST,
            f"--model.encoder_ckpt={ckpt}",
            "--trainer.max_epochs=1",
            "--model.init_args.mode=knn",
            f"--model.init_args.output_dir={out}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            *extra,
        ]
    )
    return json.loads((out / "results.json").read_text())["evaluation_data"]


def test_evaluation_takes_the_encoders_input_settings_and_dataset(tiny_root, tmp_path):
    ckpt = pretrained_with(
        tmp_path,
        tiny_root,
        num_frames=4,
        clip_seconds=1.0,
        sample_rate=8000,
        spectrogram=SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32),
    )
    used = run_test(tmp_path, ckpt)
    assert used["num_frames"] == 4 and used["clip_seconds"] == 1.0 and used["sample_rate"] == 8000
    assert used["spectrogram"]["hop_length"] == 64 and used["spectrogram"]["n_mels"] == 32
    assert list(used["augment"]["mean"]) == [0.5, 0.4, 0.3] and list(used["augment"]["std"]) == [0.2, 0.3, 0.25]
    assert used["synthetic"] == plain(asdict(TINY)) and used["synthetic_root"] == str(tiny_root)  # the dataset it was trained on
    assert used["short_side"] == 40 and used["eval_clips"] == 4  # the protocol's own settings stay the configs'


def test_the_checkpoints_input_spec_is_what_the_evaluation_feeds_the_encoder(tiny_root, tmp_path):
    ckpt = pretrained_with(tmp_path, tiny_root, num_frames=4, sample_rate=8000)
    saved = torch.load(ckpt, weights_only=True)
    spec = InputSpec.from_data_settings(saved["datamodule_hyper_parameters"])
    saved["input_spec"] = dataclasses.replace(spec, num_frames=2).to_dict()  # the spec wins over the data settings
    torch.save(saved, ckpt)
    used = run_test(tmp_path, ckpt)
    assert used["num_frames"] == 2 and used["sample_rate"] == 8000


@pytest.mark.parametrize(
    "option, words",
    [
        ("--data.num_frames=8", ["data.num_frames", "8", "pre-training value 4"]),
        ("--data.spectrogram.hop_length=128", ["data.spectrogram.hop_length", "128", "64"]),
        ("--data.sample_rate=16000", ["data.sample_rate", "16000", "8000"]),
    ],
)
def test_a_conflicting_input_setting_is_an_error_naming_both_values(option, words, tiny_root, tmp_path, capsys):
    ckpt = pretrained_with(
        tmp_path, tiny_root, num_frames=4, sample_rate=8000, spectrogram=SpectrogramConfig(n_fft=256, hop_length=64, n_mels=32)
    )
    with pytest.raises(SystemExit) as exit_:
        run_test(tmp_path, ckpt, option)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "override_input_settings" in err and "Traceback" not in err, err


def test_the_override_option_evaluates_with_the_explicit_setting_and_says_so(tiny_root, tmp_path, caplog):
    ckpt = pretrained_with(tmp_path, tiny_root, num_frames=4, sample_rate=8000)
    used = run_test(tmp_path, ckpt, "--data.num_frames=2", "--model.init_args.override_input_settings=true")
    assert used["num_frames"] == 2 and used["sample_rate"] == 8000
    assert any("data.num_frames = 2 as set, not the encoder's pre-training 4" in r.getMessage() for r in caplog.records)


def test_the_python_path_refuses_a_data_module_the_encoder_was_not_trained_for(tiny_root, tmp_path):
    ckpt = pretrained_with(tmp_path, tiny_root, num_frames=4)
    probe = LinearProbe(str(ckpt), num_classes=4, mode="knn", output_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"data.num_frames: 8 conflicts with the encoder's pre-training value 4"):
        linear_evaluation(trainer(tmp_path), probe, tiny_data(tiny_root))  # 8 frames by default


def test_random_init_baseline_normalises_with_the_training_clips_statistics(tiny_root, tmp_path):
    """The baseline margins are measured against: the random encoder's batch-norm statistics
    re-estimated on the training clips; the same weights with the initial statistics (mean 0,
    variance 1) are reported beside it; the pre-trained encoder is left as it is."""
    expected = fake_checkpoint(tmp_path / "enc.ckpt")
    probe = LinearProbe(str(tmp_path / "enc.ckpt"), num_classes=4, mode="cached", baselines=True, output_dir=str(tmp_path))
    linear_evaluation(trainer(tmp_path, epochs=1, enable_checkpointing=False), probe, tiny_data(tiny_root))
    estimated, initial = (probe.encoders[name] for name in ("random-init", "random-init-initial-bn"))
    for (name, a), b in zip(estimated.state_dict().items(), initial.state_dict().values()):
        if name.endswith(("running_mean", "running_var")):
            reset = torch.zeros_like(b) if name.endswith("running_mean") else torch.ones_like(b)
            assert torch.equal(b, reset) and not torch.allclose(a, b), name  # re-estimated on the data
        elif not name.endswith("num_batches_tracked"):
            assert torch.equal(a, b), name  # the same weights
    for k, v in probe.encoders["pretrained"].state_dict().items():
        assert torch.equal(v, expected[k]), k
    metrics = json.loads((tmp_path / "results.json").read_text())["metrics"]
    assert {f"{e}/cached/fused" for e in ("pretrained", "random-init", "random-init-initial-bn")} <= set(metrics)


def test_a_store_gives_the_same_evaluation_decoded_in_the_workers_or_on_the_device(tiny_root, tmp_path):
    """The full protocol (probe training views and the test's clips x crops) on a shard store of
    the tiny set: the same metrics whichever side decodes the JPEG frames."""
    store = tmp_path / "store"
    write_store(tiny_root, store, PrepareConfig(format="shards", short_side=40, fps=TINY.fps, audio_rate=16000), workers=1, progress=False)
    fake_checkpoint(tmp_path / "enc.ckpt")
    metrics = {}
    for on in ("worker", "device"):
        data = AVDataModule(
            str(store), batch_size=4, num_workers=0, short_side=40, sample_rate=16000, eval_clips=2, eval_crops=2,
            augment=AugmentConfig(crop_size=32), decode_on=on,
        )  # fmt: skip
        out = tmp_path / on
        probe = LinearProbe(str(tmp_path / "enc.ckpt"), num_classes=4, mode="full", output_dir=str(out))
        linear_evaluation(trainer(out, epochs=1, enable_checkpointing=False), probe, data)
        metrics[on] = json.loads((out / "results.json").read_text())
    assert metrics["worker"]["num_test_videos"] == metrics["device"]["num_test_videos"] == 8
    assert metrics["worker"]["metrics"] == metrics["device"]["metrics"]
