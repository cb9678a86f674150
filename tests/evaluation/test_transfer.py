"""avssl transfer: retrieval and linear protocols on tiny official-layout trees, split averaging."""

from __future__ import annotations

import json

import pytest
import pytorch_lightning as pl
import torch

import avssl
from avssl.cli import main
from avssl.evaluation.retrieval import recall_at_k
from avssl.workflows.transfer import summarise
from tests.conftest import TINY
from tests.data import transfer_trees as trees


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("transfer")
    return {name: getattr(trees, name)(base / name) for name in ("ucf101", "esc50")}


def test_recall_at_k_counts_queries_with_a_same_class_item_among_the_k_nearest():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])
    gallery_labels = torch.tensor([0, 1, 2, 1])
    query = torch.tensor([[2.0, 0.1], [0.9, 1.0]])  # nearest: item 0 then 2; item 2 then 1
    assert recall_at_k(query, torch.tensor([0, 1]), gallery, gallery_labels, ks=(1, 2)) == {"R@1": 50.0, "R@2": 100.0}
    assert recall_at_k(query, torch.tensor([1, 0]), gallery, gallery_labels, ks=(1, 2, 20)) == {"R@1": 0.0, "R@2": 0.0, "R@20": 100.0}


def test_split_summary_is_mean_and_sample_std_with_the_number_of_splits():
    per_split = {1: {"audio": {"top1": 50.0}}, 2: {"audio": {"top1": 70.0}}, 3: {"audio": {"top1": 60.0}}}
    assert summarise(per_split) == {"audio": {"top1": {"mean": 60.0, "std": 10.0, "n": 3}}}
    assert summarise({2: {"video": {"R@1": 40.0}}})["video"]["R@1"] == {"mean": 40.0, "std": 0.0, "n": 1}


def test_retrieval_over_every_split_of_a_video_only_benchmark(checkpoint, roots, tmp_path, capsys):
    out = tmp_path / "retrieval"
    main(
        ["transfer", "retrieval", "--root", str(roots["ucf101"]), "--ckpt", str(checkpoint), "--split", "all"]
        + ["--clips", "2", "--batch-size", "4", "--num-workers", "0", "--out", str(out)]
    )
    report = json.loads((out / "transfer.json").read_text())
    assert report["dataset"] == "ucf101" and report["splits"] == [1, 2, 3] and report["protocol"] == "retrieval"
    assert report["encoder_sha256"] == avssl.load_encoder(checkpoint).sha256
    assert set(report["per_split"]) == {"1", "2", "3"} and all(set(m) == {"video"} for m in report["per_split"].values())
    assert report["skipped_files"] == {}  # every listed video decoded (a skip would be named here, per split)
    split1 = json.loads((out / "split1" / "results.json").read_text())
    assert split1["num_queries"] == 3 and split1["num_gallery"] == 9
    assert (split1["dataset"], split1["split"], split1["encoder_sha256"]) == ("ucf101", 1, report["encoder_sha256"])
    summary = report["summary"]["video"]
    assert summary["R@1"]["n"] == 3 and summary["R@20"]["mean"] == 100.0  # the gallery holds every class
    # each class has its own colour: even this barely trained encoder retrieves the class
    assert summary["R@1"]["mean"] >= 66.0
    assert "ucf101, retrieval, split(s) 1,2,3" in capsys.readouterr().out


def test_esc50_five_fold_linear_probe_on_the_audio_encoder(checkpoint, roots, tmp_path):
    out = tmp_path / "esc"
    main(
        ["transfer", "linear", "--root", str(roots["esc50"]), "--ckpt", str(checkpoint), "--split", "all", "--out", str(out), "--"]
        + ["--config", "linear.yaml", "--config", "demo_linear.yaml", "--trainer.max_epochs=3", "--data.batch_size=4"]
        + ["--data.num_workers=0", "--model.init_args.mode=cached", "--model.init_args.train_clips=2", "--data.eval_clips=2"]
    )
    report = json.loads((out / "transfer.json").read_text())
    assert report["dataset"] == "esc50" and report["splits"] == [1, 2, 3, 4, 5] and report["probe_mode"] == "cached"
    assert report["summary"]["audio"]["top1"]["n"] == 5 and set(report["summary"]) == {"audio"}  # no fused / video readout
    fold = json.loads((out / "split3" / "results.json").read_text())
    assert fold["dataset"] == "esc50" and fold["split"] == 3 and fold["num_test_videos"] == 3 and fold["num_train_videos"] == 12
    per_fold = [report["per_split"][str(k)]["audio"]["top1"] for k in range(1, 6)]
    assert report["summary"]["audio"]["top1"]["mean"] == pytest.approx(sum(per_fold) / 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retrieval", "--split", "4"], "--split: ucf101 has splits 1..3"),
        (["retrieval"], "--ckpt: retrieval measures a pre-trained encoder"),
        (["linear", "--layout", "kinetics"], "is not in an official layout"),
    ],
)
def test_bad_transfer_arguments_are_one_line_errors(roots, args, message, capsys):
    with pytest.raises(SystemExit):
        main(["transfer", *args, "--root", str(roots["ucf101"])])
    assert message in capsys.readouterr().err


def test_avssl_report_gathers_transfer_results_into_one_table_per_checkpoint(tmp_path, capsys):
    def write(name, sha, dataset, protocol, summary, splits):
        path = tmp_path / name / "transfer.json"
        path.parent.mkdir(parents=True)
        payload = {"dataset": dataset, "protocol": protocol, "splits": splits, "encoder_sha256": sha, "encoder_ckpt": f"{sha}.ckpt"}
        path.write_text(json.dumps({**payload, "summary": summary}))

    write("a", "aaaa" * 16, "ucf101", "retrieval", {"video": {"R@1": {"mean": 40.0, "std": 2.0, "n": 3}}}, [1, 2, 3])
    write("b", "aaaa" * 16, "esc50", "linear", {"audio": {"top1": {"mean": 70.0, "std": 5.0, "n": 5}}}, [1, 2, 3, 4, 5])
    write("c", "bbbb" * 16, "hmdb51", "finetune", {"video": {"top1": {"mean": 30.0, "std": 0.0, "n": 1}}}, [1])
    main(["report", str(tmp_path), "--out", str(tmp_path / "report")])
    text = (tmp_path / "report" / "transfer.md").read_text()
    first, second = text.split("## Encoder ")[1:]
    assert first.startswith("aaaaaaaaaaaa (") and second.startswith("bbbbbbbbbbbb (")
    assert "| esc50 | linear | 1,2,3,4,5 | audio | - | 70.0 ± 5.0 (n=5) |" in first
    assert "| ucf101 | retrieval | 1,2,3 | video | 40.0 ± 2.0 (n=3) | - |" in first
    assert "| hmdb51 | finetune | 1 | video | 30.0 |" in second
    assert "transfer report:" in capsys.readouterr().out


def test_cross_modal_retrieval_finds_each_videos_own_other_stream():
    from torch import nn

    from avssl.evaluation.retrieval import cross_modal_retrieval

    projectors = nn.ModuleDict({"audio": nn.Identity(), "video": nn.Identity()})
    audio = torch.eye(4) + 0.1
    video = audio[[0, 1, 2, 3]] * 2.0  # same directions
    assert cross_modal_retrieval(projectors, audio, video)["audio->video"]["R@1"] == 100.0
    swapped = audio[[1, 0, 3, 2]]
    result = cross_modal_retrieval(projectors, audio, swapped)
    assert result["audio->video"]["R@1"] == 0.0 and result["video->audio"]["R@1"] == 0.0 and result["audio->video"]["R@5"] == 100.0


def test_a_checkpoint_with_cross_modal_projectors_also_gets_audio_video_retrieval(tiny_root, tmp_path):
    data = avssl.AVDataModule(
        synthetic_root=str(tiny_root), synthetic=TINY, batch_size=4, num_workers=0, short_side=40, sample_rate=16000,
        num_frames=4, augment=avssl.AugmentConfig(crop_size=32),
    )  # fmt: skip
    model = avssl.SimCLR(
        backbone=avssl.BackboneConfig(width=8, layers=(1, 1, 1, 1)), proj_hidden_dim=32, proj_dim=16, cross_modal_weight=1.0,
        stream_hidden_dim=16, stream_dim=8,
    )  # fmt: skip
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, data)
    ckpt = tmp_path / "xm.ckpt"
    trainer.save_checkpoint(ckpt)
    encoder = avssl.load_encoder(ckpt)
    torch.testing.assert_close(encoder.stream_projectors["audio"][0].weight, model.stream_projectors["audio"][0].weight)
    root = trees.vggsound(tmp_path / "vggsound")
    out = tmp_path / "out"
    main(["transfer", "retrieval", "--root", str(root), "--ckpt", str(ckpt), "--clips", "2", "--num-workers", "0", "--out", str(out)])
    metrics = json.loads((out / "transfer.json").read_text())["per_split"]["1"]
    assert set(metrics) == {"video", "audio", "fused", "audio->video", "video->audio"}
    assert metrics["audio->video"]["R@20"] == 100.0  # 3 test videos: every one within the 20 nearest
