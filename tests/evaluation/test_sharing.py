"""Encoder folders: avssl export, loading a folder or a Hub id everywhere a checkpoint goes,
save_pretrained / from_pretrained / push_to_hub, torch.hub, and every bad input as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import avssl
from avssl.cli import main
from avssl.errors import ConfigError
from avssl.evaluation import folder as folder_format
from avssl.evaluation.encoder import PretrainedEncoder
from tests.data import transfer_trees as trees
from tests.test_cli_errors import one_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("shared") / "encoder"
    main(["export", str(checkpoint), str(out)])
    return out


def same_input(encoder, seed=0):
    g = torch.Generator().manual_seed(seed)
    spec = encoder.input
    video = torch.randn(2, 3, spec.num_frames, 32, 32, generator=g)
    audio = torch.randn(2, 1, spec.spectrogram["n_mels"], 40, generator=g)
    with torch.no_grad():
        return encoder.backbone.forward_streams(video, audio)


def test_the_folder_describes_the_encoder_and_gives_bit_equal_features(checkpoint, exported, tiny_root):
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((exported / "config.json").read_text())
    assert config["format_version"] == folder_format.FORMAT_VERSION and config["avssl_version"] == avssl.__version__
    assert avssl.BackboneConfig(**config["architecture"]) == avssl.BackboneConfig(width=8, layers=(1, 1, 1, 1))
    assert config["input"]["num_frames"] == 4 and config["input"]["sample_rate"] == 16000
    assert config["method"]["class_path"] == "avssl.methods.simclr.SimCLR" and config["method"]["hyper_parameters"]["proj_dim"] == 16
    assert config["data"]["settings"]["short_side"] == 40 and "synthetic set" in config["data"]["name"]
    assert config["data"]["counts"]["train split, 2 training clips per video"]["videos"] > 0
    assert config["training"]["global_step"] == 1 and config["training"]["source"] == checkpoint.name
    card = (exported / "README.md").read_text()
    assert (
        card.startswith("---\nlicense:  #")
        and "| frames per clip | 4 |" in card
        and "| frames decoded at a short side of (px, training) | 40 |" in card
        and "avssl.load_encoder" in card
    )
    assert set(load_file(str(exported / "model.safetensors"))) == {
        f"backbone.{k}" for k in avssl.load_encoder(checkpoint).backbone.state_dict()
    }

    from_ckpt, from_folder = avssl.load_encoder(checkpoint), PretrainedEncoder.from_pretrained(exported)
    assert from_folder.input == from_ckpt.input and from_folder.architecture == from_ckpt.architecture
    for key, value in same_input(from_ckpt).items():
        assert torch.equal(same_input(from_folder)[key], value), key
    videos = sorted((tiny_root / "videos").glob("*.mp4"))[:2]
    a = avssl.extract_features(checkpoint, videos, clips=2)
    b = avssl.extract_features(exported, videos, clips=2)  # extract_features takes the folder as it takes a checkpoint
    assert torch.equal(a.fused, b.fused)


def test_avssl_test_and_transfer_take_the_folder(checkpoint, exported, tmp_path):
    results = {}
    for name, source in (("ckpt", checkpoint), ("folder", exported)):
        out = tmp_path / name
        test = ["test", "--config=configs/linear.yaml", "--config=configs/demo_linear.yaml", "--data.num_workers=0"]
        test += [f"--model.encoder_ckpt={source}", "--model.init_args.mode=knn", f"--model.init_args.output_dir={out}"]
        main([*test, f"--trainer.logger.init_args.save_dir={tmp_path}", "--model.init_args.baselines=false"])
        results[name] = json.loads((out / "results.json").read_text())
    assert results["folder"]["metrics"] == results["ckpt"]["metrics"]
    assert results["folder"]["evaluation_data"]["num_frames"] == 4  # the input settings came from the folder
    root = trees.ucf101(tmp_path / "ucf101")
    for name, source in (("ckpt", checkpoint), ("folder", exported)):
        main(["transfer", "retrieval", "--root", str(root), "--ckpt", str(source), "--split", "1", "--out", str(tmp_path / f"r_{name}")])
    read = [json.loads((tmp_path / f"r_{n}" / "transfer.json").read_text())["per_split"] for n in ("ckpt", "folder")]
    assert read[0] == read[1]


def test_torch_hub_loads_the_folder_from_a_checkout(checkpoint, exported):
    encoder = torch.hub.load(str(ROOT), "avssl_encoder", str(exported), source="local")
    reference = avssl.load_encoder(checkpoint)
    assert torch.equal(same_input(encoder)["fused"], same_input(reference)["fused"])


def test_a_hub_id_is_fetched_with_huggingface_hub_and_read_like_the_folder(exported, monkeypatch):
    import huggingface_hub

    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: asked.append((repo_id, kw)) or str(exported))
    encoder = avssl.load_encoder("someone/av-encoder")
    assert asked[0][0] == "someone/av-encoder" and "model.safetensors" in asked[0][1]["allow_patterns"]
    assert encoder.architecture.width == 8

    def offline(repo_id, **kw):
        raise OSError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ConfigError, match=r"could not fetch the Hub repository someone/missing \(OSError: network unreachable\)"):
        avssl.load_encoder("someone/missing")


def test_only_what_cannot_be_a_local_path_is_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert folder_format.is_hub_id("someone/encoder")
    for local in ("runs/encoder", "someone/last.ckpt", "someone/model.safetensors", "a/b/c", "/abs/path"):
        assert not folder_format.is_hub_id(local), local
    with pytest.raises(ConfigError, match="does not exist"):
        avssl.load_encoder("someone/last.ckpt")  # a missing file, not a download


def test_push_to_hub_uploads_the_folder(checkpoint, tmp_path):
    class StandIn:  # what HfApi receives; nothing leaves the machine
        calls = []

        def create_repo(self, repo_id, **kw):
            self.calls.append(("create_repo", repo_id, kw))

        def upload_folder(self, *, repo_id, folder_path, commit_message):
            shutil.copytree(folder_path, tmp_path / "uploaded")
            self.calls.append(("upload_folder", repo_id, commit_message))
            return "commit"

    api = StandIn()
    encoder = avssl.load_encoder(checkpoint)
    assert encoder.push_to_hub("me/encoder", private=True, api=api) == "commit"
    assert api.calls[0] == ("create_repo", "me/encoder", {"private": True, "exist_ok": True})
    assert api.calls[1][:2] == ("upload_folder", "me/encoder")
    uploaded = avssl.load_encoder(tmp_path / "uploaded")
    assert torch.equal(same_input(uploaded)["fused"], same_input(encoder)["fused"])


def test_projectors_travel_on_request(tiny_root, tmp_path):
    import pytorch_lightning as pl

    from tests.conftest import TINY

    data = avssl.AVDataModule(
        synthetic_root=str(tiny_root), synthetic=TINY, batch_size=4, num_workers=0, short_side=40, sample_rate=16000,
        num_frames=4, augment=avssl.AugmentConfig(crop_size=32),
    )  # fmt: skip
    model = avssl.CrossModal(backbone=avssl.BackboneConfig(width=4, layers=(1, 1, 1, 1)), proj_hidden_dim=16, proj_dim=8)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp_path / "xm.ckpt")
    main(["export", str(tmp_path / "xm.ckpt"), str(tmp_path / "with"), "--projectors"])
    main(["export", str(tmp_path / "xm.ckpt"), str(tmp_path / "without")])
    assert avssl.load_encoder(tmp_path / "without").stream_projectors is None
    loaded = avssl.load_encoder(tmp_path / "with").stream_projectors.state_dict()
    assert loaded.keys() == model.projectors.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in model.projectors.state_dict().items())
    assert json.loads((tmp_path / "with" / "config.json").read_text())["projectors"] == {"prefix": "projectors."}


def test_a_cav_mae_vit_encoder_exports_and_reads_back_bit_equal(tiny_root, tmp_path):
    """The ViT architecture travels in config.json; the card names it; features are bit-equal."""
    import pytorch_lightning as pl

    from tests.conftest import TINY

    data = avssl.AVDataModule(
        synthetic_root=str(tiny_root), synthetic=TINY, batch_size=4, num_workers=0, short_side=40, sample_rate=16000,
        num_frames=4, augment=avssl.AugmentConfig(crop_size=32),
    )  # fmt: skip
    arch = avssl.BackboneConfig(encoder="vit", dim=16, depth=1, heads=2, patch_size=8, tubelet=2, shared_depth=1, fusion="joint")
    model = avssl.CAVMAE(backbone=arch, decoder_dim=16, decoder_depth=1, decoder_heads=2)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp_path / "cavmae.ckpt")
    main(["export", str(tmp_path / "cavmae.ckpt"), str(tmp_path / "folder")])
    folder, checkpoint = avssl.load_encoder(tmp_path / "folder"), avssl.load_encoder(tmp_path / "cavmae.ckpt")
    assert folder.architecture == checkpoint.architecture == arch
    assert "video and audio ViTs; dim 16, 1 blocks each, then 1 shared" in (tmp_path / "folder" / "README.md").read_text()
    a, b = same_input(folder), same_input(checkpoint)
    assert a.keys() == {"fused", "audio", "video"} and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_exports_are_one_line_and_write_nothing(checkpoint, exported, tmp_path, capsys):
    line = one_error(capsys, ["export", str(checkpoint), str(exported)])
    assert "exists and is not an empty folder" in line
    broken = torch.load(checkpoint, weights_only=True)
    broken["state_dict"] = dict(broken["state_dict"])
    key = next(k for k in broken["state_dict"] if k.startswith("backbone.") and broken["state_dict"][k].is_floating_point())
    broken["state_dict"][key] = broken["state_dict"][key].clone().fill_(float("nan"))
    torch.save(broken, tmp_path / "nan.ckpt")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    probe = dict(torch.load(checkpoint, weights_only=True), encoder_sha256="0" * 64)
    torch.save(probe, tmp_path / "probe.ckpt")
    for source, words in (
        (tmp_path / "nan.ckpt", "non-finite values"),
        (notes, "CKPT"),
        (tmp_path / "probe.ckpt", "not a pre-training checkpoint"),
        (tmp_path / "nowhere.ckpt", "does not exist"),
    ):
        out = tmp_path / f"out_{source.stem}"
        assert words in one_error(capsys, ["export", str(source), str(out)]), source
        assert not out.exists() and not list(tmp_path.glob(f".out_{source.stem}*"))  # nothing written, no temporary left
    assert "has no audio and video projectors" in one_error(capsys, ["export", str(checkpoint), str(tmp_path / "p"), "--projectors"])
    assert not (tmp_path / "p").exists()


def copy_of(exported, tmp_path, name="copy") -> Path:
    target = tmp_path / name
    shutil.copytree(exported, target)
    return target


def test_loading_is_strict_and_refuses_newer_formats_and_non_finite_weights(exported, tmp_path):
    weights = load_file(str(exported / "model.safetensors"))
    first = sorted(weights)[0]
    missing = copy_of(exported, tmp_path, "missing")
    save_file({k: v for k, v in weights.items() if k != first}, str(missing / "model.safetensors"))
    with pytest.raises(ConfigError, match=rf"missing \['{first.removeprefix('backbone.')}'\]"):
        avssl.load_encoder(missing)
    extra = copy_of(exported, tmp_path, "extra")
    save_file({**weights, "head.weight": torch.zeros(2)}, str(extra / "model.safetensors"))
    with pytest.raises(ConfigError, match=r"unexpected tensors \['head.weight'\]"):
        avssl.load_encoder(extra)
    newer = copy_of(exported, tmp_path, "newer")
    config = json.loads((newer / "config.json").read_text())
    (newer / "config.json").write_text(json.dumps({**config, "format_version": 99, "avssl_version": "9.0"}))
    with pytest.raises(ConfigError, match=r"format 99 \(written by avssl 9.0\); this avssl reads format 1 and older"):
        avssl.load_encoder(newer)
    nonfinite = copy_of(exported, tmp_path, "nan")
    save_file({**weights, first: torch.full_like(weights[first], float("inf"))}, str(nonfinite / "model.safetensors"))
    with pytest.raises(ConfigError, match="non-finite values"):
        avssl.load_encoder(nonfinite)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="is a directory without config.json: not an avssl encoder folder"):
        avssl.load_encoder(empty)


def test_the_older_checkpoint_layout_exports(checkpoint, tmp_path):
    """Checkpoints of avssl 0.1 (architecture as top-level hyper-parameters, no input spec) export too."""
    ckpt = torch.load(checkpoint, weights_only=True)
    hp = {k: v for k, v in ckpt["hyper_parameters"].items() if k != "backbone"}
    older = {k: v for k, v in ckpt.items() if k not in ("input_spec", "data_counts")}
    torch.save(dict(older, hyper_parameters={**hp, "width": 8, "layers": [1, 1, 1, 1]}), tmp_path / "older.ckpt")
    main(["export", str(tmp_path / "older.ckpt"), str(tmp_path / "older")])
    loaded = avssl.load_encoder(tmp_path / "older")
    assert loaded.architecture == avssl.BackboneConfig(width=8, layers=(1, 1, 1, 1))
    assert torch.equal(same_input(loaded)["fused"], same_input(avssl.load_encoder(checkpoint))["fused"])
