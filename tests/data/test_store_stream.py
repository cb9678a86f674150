"""Pre-training on a shard store streams its training split with litdata: every video once per
epoch, each rank its own videos, and a run stopped mid-epoch resumes with the batches the
uninterrupted run would have trained on (2 CPU processes, gloo). The same store read through
``s3://`` from a local S3-compatible server (moto) gives the same clips."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import torch

from avssl.augment.pipeline import AugmentConfig
from avssl.data.datamodule import AVDataModule
from avssl.data.formats import PrepareConfig
from avssl.data.layouts.synthetic import SyntheticSpec
from avssl.data.streaming import StoreLoader, StoreStream, chunk_region
from avssl.errors import ConfigError
from avssl.prepare import shards
from avssl.prepare.synthetic import generate

SPEC = SyntheticSpec(
    num_classes=4, videos_per_class=6, duration=3.0, size=48, sample_rate=16000, seed=1, val_fraction=0.0, test_fraction=0.2
)
CLIP = dict(short_side=40, sample_rate=16000, clip_seconds=1.0, num_frames=4, augment=AugmentConfig(crop_size=32, eval_crop_size=32))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """16 train, 4 val and 4 test videos in 12 chunks of 2 videos."""
    root = tmp_path_factory.mktemp("stream")
    generate(root / "src", SPEC, progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shards, "CHUNK_BYTES", "500KB")
        shards.write_store(
            root / "src",
            root / "store",
            PrepareConfig(format="shards", short_side=40, fps=SPEC.fps, audio_rate=16000),
            workers=1,
            progress=False,
        )
    assert len(json.loads((root / "store" / "index.json").read_text())["chunks"]) > 4
    return root / "store"


def moto_server() -> tuple[subprocess.Popen, int]:
    """A local S3-compatible server (moto's) on a free port of 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return server, port


def upload(store: Path, prefix: str) -> None:
    """The store's files as ``s3://avssl/<prefix>/`` on the server the environment names."""
    s3 = boto3.client("s3")
    for _ in range(100):  # the server takes a moment to listen
        try:
            s3.create_bucket(Bucket="avssl")
            break
        except Exception:
            time.sleep(0.1)
    for path in sorted(store.iterdir()):
        if path.is_file():
            s3.upload_file(str(path), "avssl", f"{prefix}/{path.name}")


@pytest.fixture(scope="module")
def bucket(store, tmp_path_factory):
    """The store uploaded as it was written to a local S3-compatible server (moto's, on
    127.0.0.1), read as ``s3://avssl/store``; the credentials and endpoint are in the environment."""
    server, port = moto_server()
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AVSSL_CACHE": str(tmp_path_factory.mktemp("avssl-cache")),
        "LITDATA_CACHE_DIR": str(tmp_path_factory.mktemp("litdata-cache")),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        upload(store, "store")
        yield "s3://avssl/store"
    server.terminate()
    server.wait()


def test_chunk_region_maps_litdata_positions_to_store_items():
    chunks = [{"filename": f"c{i}", "chunk_size": 3} for i in range(3)]
    assert chunk_region(chunks, range(0, 9)) == (["c0", "c1", "c2"], [(0, 3), (0, 3), (0, 3)], [0, 0, 0])
    # litdata numbers the chosen chunks' items from 0: c1's items are 0-2 there, 3-5 in the store
    assert chunk_region(chunks, range(4, 7)) == (["c1", "c2"], [(1, 3), (0, 1)], [3, 3])


@pytest.mark.parametrize("workers", [0, 2])
def test_the_training_loader_streams_every_video_once_per_epoch_with_the_datasets_clips(store, workers):
    data = AVDataModule(str(store), batch_size=4, num_workers=workers, **CLIP)
    loader, clips = data.train_dataloader(), data.dataset("train", train=True)
    assert isinstance(loader, StoreLoader) and len(loader) == 4
    orders = []
    for epoch in range(2):  # numbered as Lightning numbers them
        seen = []
        for batch in loader:
            assert loader.dataset.epoch == epoch
            for index, video, starts in zip(batch["index"].tolist(), batch["video_id"], batch["start"].numpy()):
                assert clips.records[index].video_id == video
                assert (starts == clips.clip_starts(epoch, index)).all()  # the map-style dataset's clips
            seen += batch["video_id"]
        assert sorted(seen) == sorted(r.video_id for r in clips.records)
        orders.append(seen)
    assert orders[0] != orders[1]  # shuffled per epoch


def test_a_split_after_the_first_streams_its_own_videos(store):
    """The test split starts mid-store: litdata's positions are shifted back to store items."""
    data = AVDataModule(str(store), batch_size=2, num_workers=0, **CLIP)
    clips = data.dataset("test", train=True)
    videos = [sample["video_id"] for sample in StoreStream(clips, "test", seed=0)]
    assert sorted(videos) == sorted(r.video_id for r in clips.records) and len(videos) == 4


def fit(store: Path | str, out: Path, *args: str) -> list[list[dict]]:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tests.data.store_fit", str(store), str(out), "--workers", "2", *args]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=Path(__file__).parents[2])
    assert run.returncode == 0, run.stderr[-3000:]
    return [[json.loads(line) for line in (out / f"rank{r}.jsonl").read_text().splitlines()] for r in range(2)]


def test_two_ranks_read_disjoint_videos_and_a_mid_epoch_resume_continues_the_epoch(store, tmp_path):
    """4 steps per epoch (16 videos, 2 ranks x 2 per batch); stopped after step 5 (mid-epoch 1),
    resumed to step 10: the resumed steps are the uninterrupted run's, to the augmented views."""
    full = fit(store, tmp_path / "full", "--max-steps", "10")
    clips = AVDataModule(str(store), **CLIP).dataset("train", train=True)
    train, index = {r.video_id for r in clips.records}, {r.video_id: i for i, r in enumerate(clips.records)}
    for row in (row for rank in full for row in rank):  # the clips media files give each video in Lightning's epoch
        assert row["starts"] == [clips.clip_starts(row["epoch"], index[v]).tolist() for v in row["videos"]]
    for epoch in (0, 1):
        per_rank = [[v for row in rank if row["epoch"] == epoch for v in row["videos"]] for rank in full]
        assert not set(per_rank[0]) & set(per_rank[1])
        assert sorted(per_rank[0] + per_rank[1]) == sorted(train)
    fit(store, tmp_path / "first", "--max-steps", "5", "--save-at", "5")
    resumed = fit(store, tmp_path / "resumed", "--max-steps", "10", "--resume", str(tmp_path / "first" / "epoch=1-step=5.ckpt"))
    for rank in range(2):
        assert [row["step"] for row in resumed[rank]] == list(range(5, 10))
        assert resumed[rank] == full[rank][5:]  # videos, clip starts, epochs and augmented views


def test_a_store_in_object_storage_gives_the_clips_of_the_local_store(store, bucket):
    local, remote = (AVDataModule(root, batch_size=4, num_workers=0, **CLIP) for root in (str(store), bucket))
    assert remote.layout == "store"
    assert [(r.video_id, r.label, r.split) for r in remote.all_records()] == [(r.video_id, r.label, r.split) for r in local.all_records()]
    for a, b in zip(local.test_dataloader(), remote.test_dataloader(), strict=True):  # random access: chunks downloaded on demand
        for key in ("video", "audio", "start", "index"):
            assert torch.equal(a[key], b[key]), key
    data = AVDataModule(bucket, batch_size=4, num_workers=2, **CLIP)
    loader, clips, seen = data.train_dataloader(), data.dataset("train", train=True), []
    for batch in loader:  # streamed by litdata's workers from the bucket
        for index, starts in zip(batch["index"].tolist(), batch["start"].numpy()):
            assert (starts == clips.clip_starts(loader.dataset.epoch, index)).all()
        seen += batch["video_id"]
    assert sorted(seen) == sorted(r.video_id for r in clips.records)


def test_two_ranks_stream_disjoint_videos_from_object_storage(store, bucket, tmp_path):
    """Each of 2 DDP processes (2 loader workers each) reads its own chunks from the bucket."""
    ranks = fit(bucket, tmp_path / "s3", "--max-steps", "4")
    per_rank = [[v for row in rank for v in row["videos"]] for rank in ranks]
    train = {r.video_id for r in AVDataModule(str(store), **CLIP).dataset("train", train=True).records}
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(train)


def test_object_storage_errors_name_the_object(store, bucket):
    with pytest.raises(ConfigError, match=r"s3://avssl/nothing-here/avssl_store.json"):
        AVDataModule("s3://avssl/nothing-here", **CLIP).read_catalog()
    with pytest.raises(ConfigError, match=r"object storage, where avssl reads shard stores only, not a manifest layout"):
        AVDataModule(bucket, layout="manifest", **CLIP)
    chunk = json.loads((store / "index.json").read_text())["chunks"][3]["filename"]
    boto3.client("s3").delete_object(Bucket="avssl", Key=f"store/{chunk}")
    try:
        with pytest.raises(ConfigError, match=rf"lacks 1 chunk file\(s\) its index.json lists: \['{chunk}'\]"):
            AVDataModule(bucket, **CLIP).read_catalog()
    finally:
        boto3.client("s3").upload_file(str(store / chunk), "avssl", f"store/{chunk}")


def test_an_unreachable_endpoint_or_refused_credentials_end_within_bounds_in_one_error(bucket, monkeypatch, tmp_path):
    """A wrong port (nothing listens) and credentials the server refuses: one error naming the
    object and the endpoint, after a bounded number of bounded tries (not litdata's 1000)."""
    monkeypatch.setenv("AVSSL_STORAGE_TIMEOUT", "2")
    monkeypatch.setenv("AVSSL_STORAGE_RETRIES", "2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            AVDataModule(bucket, **CLIP).read_catalog()
        except BaseException as e:  # noqa: BLE001 - the error is the result
            errors.append(e)

    reading = threading.Thread(target=read, daemon=True)  # a daemon: a read that never ends fails the test, not the run
    reading.start()
    reading.join(timeout=30)
    assert not reading.is_alive(), "reading a store at an unreachable endpoint did not end within 30 s"
    assert isinstance(errors[0], ConfigError), errors
    assert re.match(rf"data.root: cannot read s3://avssl/store/avssl_store.json from {closed} ", str(errors[0])), errors[0]
    with socket.socket() as s:  # a server that checks credentials (moto's IAM mode), ours unknown to it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    strict = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        for _ in range(100):  # the server takes a moment to listen
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        with pytest.raises(
            ConfigError, match=r"^data.root: cannot read s3://avssl/store/avssl_store.json from http://127.0.0.1:\d+ .*403.*Forbidden"
        ):
            AVDataModule(bucket, **CLIP).read_catalog()
    finally:
        strict.terminate()
        strict.wait()


def test_a_server_that_stops_during_training_costs_the_unread_videos_not_the_run(store, monkeypatch, caplog):
    """The object store goes away after the run has read the store's description: every chunk
    download then fails within object_store's bounded retries, each video is tried once more on
    its own, skipped and counted (data/failed), and the epoch ends instead of waiting."""
    server, port = moto_server()
    prefix = f"stopped-{os.getpid()}-{time.time_ns()}"  # litdata caches chunks by URI: never one read before
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AVSSL_STORAGE_TIMEOUT", "2")
        monkeypatch.setenv("AVSSL_STORAGE_RETRIES", "2")
        upload(store, prefix)
        data = AVDataModule(f"s3://avssl/{prefix}", batch_size=4, num_workers=0, **CLIP)
        loader = data.train_dataloader()  # the store's description is read
    finally:
        server.terminate()
        server.wait()
    batches: list[dict] = []
    reading = threading.Thread(target=lambda: batches.extend(loader), daemon=True)
    reading.start()
    reading.join(timeout=240)
    assert not reading.is_alive(), "an epoch from a stopped object store did not end within 240 s"
    assert len(batches) == 4 and all(int(b["num_failed"]) == 4 and "video" not in b for b in batches)
    assert any("not readable" in r.getMessage() and "its videos are read one by one" in r.getMessage() for r in caplog.records)
