"""`avssl prepare`: re-encoded copies with strictly increasing time stamps, WAV sidecars, resumable, reported."""

from __future__ import annotations

import csv
import json
import shutil
import wave

import av
import numpy as np
import pytest

from avssl.augment.pipeline import AugmentConfig
from avssl.cli import main
from avssl.data.datamodule import AVDataModule
from avssl.data.decode import ClipDecoder, probe
from avssl.data.formats import PrepareConfig
from avssl.data.prepared import probe_file
from avssl.errors import ConfigError
from avssl.prepare.mp4 import prepare


@pytest.fixture
def source(tmp_path, tiny_root):
    """A manifest dataset of 4 tiny videos + one corrupt file."""
    src = tmp_path / "src"
    (src / "videos").mkdir(parents=True)
    all_rows = list(csv.DictReader(open(tiny_root / "manifest.csv")))
    rows = [r for r in all_rows if r["split"] == "train"][:2] + [r for r in all_rows if r["split"] != "train"][:2]
    for r in rows:
        shutil.copy(tiny_root / r["path"], src / r["path"])
    (src / "videos" / "broken.mp4").write_bytes(b"\x00" * 64)
    with open(src / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "split"])
        writer.writeheader()
        writer.writerows([{k: r[k] for k in ("path", "label", "split")} for r in rows])
    return src


def test_prepare_writes_timestamped_short_gop_copies_and_reports(source, tmp_path):
    dst = tmp_path / "dst"
    cfg = PrepareConfig(short_side=32, fps=25, gop=8, audio_rate=16000)
    report = prepare(source, dst, cfg, workers=2, progress=False)
    assert report["prepared"] == 4 and report["skipped_by_reason"] == {"unreadable": 1}
    assert report["skipped"][0]["path"].endswith("broken.mp4")
    assert json.loads((dst / "prepare_report.json").read_text())["prepared"] == 4
    out = sorted((dst / "videos").glob("*.mp4"))
    assert len(out) == 4 and not (dst / ".avssl-prepare-tmp").exists()
    with av.open(str(out[0])) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.pts is not None]
        step = 1 / (25 * stream.time_base)  # ticks per output frame
        pts = sorted(p.pts / step for p in packets)
        dts = [p.dts for p in packets]
        keyframes = sorted(p.pts / step for p in packets if p.is_keyframe)
        assert min(stream.codec_context.width, stream.codec_context.height) == 32 and stream.average_rate == 25
    with av.open(str(out[0])) as container:  # B-frames nothing references: dropped under NONREF
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        referenced = sum(1 for _ in container.decode(stream))
    assert all(a < b for a, b in zip(dts, dts[1:]))  # decode order: strictly increasing dts
    assert referenced < 0.5 * len(pts)
    assert pts == list(range(len(pts))) and len(pts) == 75  # frame k at k / fps: strictly increasing, 3 s
    assert all(b - a <= 8 for a, b in zip(keyframes, keyframes[1:]))
    with wave.open(str(out[0].with_suffix(".wav"))) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 16000, 2)
        assert abs(w.getnframes() / 16000 - 3.0) < 0.05


def test_prepared_copy_reads_like_the_source(source, tmp_path):
    dst = tmp_path / "dst"
    prepare(source, dst, PrepareConfig(short_side=32, fps=25, gop=8, audio_rate=16000), workers=1, progress=False)
    src_data = AVDataModule(str(source), batch_size=2, num_workers=0, short_side=32, sample_rate=16000, augment=AugmentConfig(crop_size=32))
    dst_data = AVDataModule(str(dst), batch_size=2, num_workers=0, short_side=32, sample_rate=16000, augment=AugmentConfig(crop_size=32))
    assert [(r.label, r.split) for r in src_data.records("train")] == [(r.label, r.split) for r in dst_data.records("train")]
    path = str(dst / "videos" / sorted(p.name for p in (dst / "videos").glob("*.mp4"))[0])
    info = probe_file(path)  # the index's read: with the sidecar the copy's report names
    assert info.sidecar is not None and info.audio_rate == 16000
    prepared = ClipDecoder(path, info, short_side=32, sample_rate=16000).audio(np.array([0.5, 1.2]), 1.28)
    original_path = str(source / "videos" / (path.rsplit("/", 1)[1]))
    original = ClipDecoder(original_path, probe(original_path), short_side=32, sample_rate=16000).audio(np.array([0.5, 1.2]), 1.28)
    assert prepared.shape == original.shape
    assert np.corrcoef(prepared.reshape(-1), original.reshape(-1))[0, 1] > 0.99  # same audio (16-bit, same window)


def test_rerun_skips_finished_files_and_redoes_partial_ones(source, tmp_path, capsys):
    dst = tmp_path / "dst"
    args = ["prepare", str(source), str(dst), "--short-side", "32", "--gop", "8", "--audio-rate", "16000", "--workers", "2"]
    main(args)
    first = sorted((dst / "videos").glob("*.mp4"))[0]
    first.unlink()  # an interrupted file: its video never got its final name
    (dst / ".avssl-prepare-tmp").mkdir()
    (dst / ".avssl-prepare-tmp" / "0123.mp4").write_bytes(b"half")
    main(args)
    report = json.loads((dst / "prepare_report.json").read_text())
    assert report["prepared"] == 1 and report["already_done"] == 3
    assert first.is_file() and not (dst / ".avssl-prepare-tmp").exists()
    assert "prepared 1, already done 3" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # other settings into the same DST: refused, nothing rewritten
        main(args[:-2] + ["--bframes", "0", "--workers", "2"])
    assert exit_info.value.code == 2
    assert "prepared with other settings (bframes: 3 -> 0)" in capsys.readouterr().err
    assert json.loads((dst / "prepare_report.json").read_text()) == report


def test_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        prepare(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no video files"):
        prepare(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ConfigError, match="--gop"):
        PrepareConfig(gop=0)
    with pytest.raises(ConfigError, match="--bframes"):
        PrepareConfig(bframes=-1)


def test_a_prepared_copy_can_be_prepared_again(source, tmp_path):
    """A prepared copy keeps its audio in sidecars (its mp4s have no audio stream): re-preparing it
    at another size, or a folder that holds one, reads the sidecars and gives the same audio."""
    first, second, outer = tmp_path / "first", tmp_path / "second", tmp_path / "outer"
    prepare(source, first, PrepareConfig(short_side=32, gop=8, audio_rate=16000), workers=1, progress=False)
    report = prepare(first, second, PrepareConfig(short_side=16, gop=8, audio_rate=16000), workers=1, progress=False)
    assert report["prepared"] == 4 and report["skipped_by_reason"] == {}
    video = sorted((second / "videos").glob("*.mp4"))[0]
    info = probe_file(str(video))  # as the index reads it: the copy's report names the sidecar
    assert info.sidecar == str(video.with_suffix(".wav")) and min(info.width, info.height) == 16
    assert probe(str(video)).sidecar is None  # the decoder alone reads no report
    with wave.open(str(video.with_suffix(".wav"))) as new, wave.open(str(first / "videos" / video.with_suffix(".wav").name)) as old:
        a, b = (np.frombuffer(w.readframes(w.getnframes()), "<i2") for w in (new, old))
    assert len(a) == len(b) and np.abs(a.astype(int) - b).max() <= 1  # the same samples
    (outer / "copy").mkdir(parents=True)  # a folder that holds a prepared copy
    shutil.copytree(first / "videos", outer / "copy" / "videos")
    shutil.copy(first / "prepare_report.json", outer / "copy")
    report = prepare(outer, tmp_path / "outer-dst", PrepareConfig(short_side=16, gop=8, audio_rate=16000), workers=1, progress=False)
    assert report["prepared"] == 4 and not (tmp_path / "outer-dst" / "copy" / "prepare_report.json").exists()
    assert probe_file(str(tmp_path / "outer-dst" / "copy" / "videos" / video.name)).sidecar is not None


def test_a_prepared_manifest_names_why_prepare_skipped_a_row(source, tmp_path):
    """A manifest row whose video prepare skipped stays in the copy's manifest; reading the copy
    reports that video with prepare's reason, not as a missing file."""
    with open(source / "manifest.csv", "a", newline="") as f:
        csv.writer(f).writerow(["videos/broken.mp4", "0", "train"])
    dst = tmp_path / "dst"
    prepare(source, dst, PrepareConfig(short_side=32, gop=8, audio_rate=16000), workers=1, progress=False)
    data = AVDataModule(str(dst), batch_size=1, num_workers=0, short_side=32, sample_rate=16000, augment=AugmentConfig(crop_size=32))
    dataset = data.dataset("train", train=True)
    assert dataset.skipped == {"unreadable": 1} and dataset.skipped_files == [(str(dst / "videos" / "broken.mp4"), "unreadable")]


def test_videos_without_audio_are_kept_by_one_option_everywhere(tmp_path, tiny_root):
    """allow_missing_audio: skipped and reported by default; kept (no sidecar, an item without
    samples) by avssl prepare in both formats and read as silence by the data module, under the one
    name (extract_features: tests/evaluation/test_features.py)."""
    import numpy as np

    from avssl.prepare.shards import write_store
    from avssl.prepare.synthetic import write_av_mp4

    src = tmp_path / "src"
    for name in ("a", "b", "c"):  # an unlabelled folder, all train
        write_av_mp4(src / f"{name}.mp4", np.full((50, 32, 32, 3), 90, np.uint8), np.zeros(32000, np.float32), 25, 16000)
    write_av_mp4(src / "silent.mp4", np.full((50, 32, 32, 3), 30, np.uint8), None, 25, 16000)
    settings = dict(short_side=32, fps=25, gop=8, audio_rate=16000)
    skipped = prepare(src, tmp_path / "default", PrepareConfig(**settings), workers=1, progress=False)
    assert skipped["skipped_by_reason"] == {"no_audio_stream": 1}
    clip = dict(batch_size=2, num_workers=0, short_side=32, sample_rate=16000, augment=AugmentConfig(crop_size=32))
    for dst, write in (("mp4", prepare), ("store", write_store)):
        fmt = "shards" if dst == "store" else "mp4"
        report = write(src, tmp_path / dst, PrepareConfig(**settings, format=fmt, allow_missing_audio=True), workers=1, progress=False)
        assert report["prepared"] == 4 and report["files"]["silent.mp4"]["status"] == "prepared", report["skipped"]
        assert AVDataModule(str(tmp_path / dst), **clip).dataset("train", train=True).skipped == {"no_audio_stream": 1}
        kept = AVDataModule(str(tmp_path / dst), allow_missing_audio=True, **clip).dataset("train", train=True)
        silent = next(i for i, r in enumerate(kept.records) if r.video_id.startswith("silent"))
        sample = kept[silent]
        assert sample["silent_audio"] and not sample["audio"].any() and sample["video"].float().mean() < 60
    main(
        [
            "prepare",
            str(src),
            str(tmp_path / "cli"),
            "--short-side",
            "32",
            "--audio-rate",
            "16000",
            "--workers",
            "1",
            "--allow-missing-audio",
        ]
    )
    assert json.loads((tmp_path / "cli" / "prepare_report.json").read_text())["settings"]["allow_missing_audio"] is True
