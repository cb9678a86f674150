"""Bad input, odd sources and frame accuracy, each on real encoded files."""

from __future__ import annotations

import pickle
import time
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avssl.data.batch import collate
from avssl.data.dataset import AVClipDataset, ClipSpec
from avssl.data.decode import VIDEO_BACKENDS, ClipDecoder, DecodeError, probe, video_pyav
from avssl.data.decode.video_pyav import PyAVVideo
from avssl.data.formats import PrepareConfig
from avssl.data.layouts import VideoRecord
from avssl.data.loaders import EpochSampler, TimeoutNamingLoader
from avssl.prepare.mp4 import prepare_file
from tests.data.media import index_frame, read_index, sequential_times, write_media

KW = dict(clip_seconds=1.28, num_frames=4, short_side=32, sample_rate=16000)
CLIP = ClipSpec(**KW)
RNG = np.random.default_rng(0)


def frames(n, size=64):
    return np.stack([index_frame(i, size, size) for i in range(n)])


def tone(seconds, rate, channels=1, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat(0.5 * np.sin(2 * np.pi * freq * t)[None], channels, 0)


def rec(path, label=0):
    return VideoRecord(str(path), label, path.stem)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_media(tmp_path_factory.mktemp("m") / "good.mp4", frames(75), audio=tone(3, 16000))


# ------------------------------------------------------------------ bad files: skipped, counted, listed
def test_every_bad_file_is_skipped_counted_and_listed(tmp_path, good):
    empty = tmp_path / "zero.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    audio_only = write_media(tmp_path / "audio_only.mp4", None, audio=tone(3, 16000))
    silent = write_media(tmp_path / "silent.mp4", frames(75), audio=None)
    records = [rec(good), rec(tmp_path / "missing.mp4"), rec(empty), rec(truncated), rec(audio_only), rec(silent)]
    ds = AVClipDataset(records, CLIP, train=True)
    assert len(ds) == 1
    assert dict(ds.skipped) == {"missing": 1, "unreadable": 2, "no_video_stream": 1, "no_audio_stream": 1}
    assert {p for p, _ in ds.skipped_files} == {r.path for r in records[1:]}


def test_missing_audio_can_become_counted_silence(tmp_path):
    silent = write_media(tmp_path / "silent.mp4", frames(75), audio=None)
    ds = AVClipDataset([rec(silent)], ClipSpec(**KW, allow_missing_audio=True), train=False, num_clips=2)
    sample = ds[(0, 0)]
    assert sample["audio"].shape == (2, round(1.28 * 16000)) and sample["audio"].abs().sum() == 0
    batch = collate([sample])
    assert batch["num_silent_audio"] == 1 and batch["num_failed"] == 0


def test_short_audio_is_zero_padded_and_counted(tmp_path):
    path = write_media(tmp_path / "short_audio.mp4", frames(75), audio=tone(1.0, 16000))  # 3 s video, 1 s audio
    decoder = ClipDecoder(str(path), probe(str(path)), short_side=32, sample_rate=16000)
    wave = decoder.audio(np.array([0.0, 1.5]), 1.28)
    assert decoder.audio_padded and wave[1].std() == 0 and wave[0, :8000].std() > 0.1
    decoder.audio(np.array([0.0]), 0.5)
    assert not decoder.audio_padded


def test_video_shorter_than_a_clip_still_gives_clips(tmp_path):
    path = write_media(tmp_path / "short.mp4", frames(20), audio=tone(0.8, 16000))  # 0.8 s < 1.28 s
    ds = AVClipDataset([rec(path)], CLIP, train=True)
    sample = ds[(0, 0)]
    assert sample["video"].shape == (2, 4, 32, 32, 3) and sample["short_video"] and sample["padded_audio"]
    assert torch.equal(sample["start"], torch.zeros(2, dtype=torch.float64))


def test_non_finite_audio_is_zeroed_and_counted(tmp_path):
    audio = tone(3, 16000)
    audio[0, 100:200] = np.nan
    audio[0, 300] = np.inf
    path = write_media(tmp_path / "nan.mkv", frames(75), audio=audio, audio_codec="pcm_f32le")
    ds = AVClipDataset([rec(path)], CLIP, train=False, num_clips=3)
    sample = ds[(0, 0)]
    assert sample["nonfinite_audio"] and torch.isfinite(sample["audio"]).all()
    assert collate([sample])["num_nonfinite_audio"] == 1


def test_runtime_decode_failure_keeps_the_training_batch_full(tmp_path, good, monkeypatch):
    other = write_media(tmp_path / "other.mp4", frames(75), audio=tone(3, 16000))
    real = ClipDecoder.video

    def flaky(self, times):
        if self.path == str(good):
            raise DecodeError(self.path, "corrupt", "injected")
        return real(self, times)

    monkeypatch.setattr(ClipDecoder, "video", flaky)
    train = AVClipDataset([rec(good), rec(other)], CLIP, train=True)
    batch = collate([train[(0, 0)], train[(0, 1)]])
    assert batch["video"].shape[0] == 2 and batch["num_failed"] == 1 and batch["index"].tolist() == [1, 1]
    test = AVClipDataset([rec(good), rec(other)], CLIP, train=False, num_clips=1)
    batch = collate([test[(0, 0)], test[(0, 1)]])
    assert batch["video"].shape[0] == 1 and batch["num_failed"] == 1  # evaluation never duplicates a video


def test_sample_rates_and_channels_become_the_configured_mono_rate(tmp_path):
    for rate in (16000, 22050, 44100, 48000):
        for channels in (1, 2):
            path = write_media(tmp_path / f"a{rate}_{channels}.mp4", frames(75), audio=tone(3, rate, channels), sample_rate=rate)
            wave = ClipDecoder(str(path), probe(str(path)), short_side=32, sample_rate=11025).audio(np.array([0.5]), 1.28)
            assert wave.shape == (1, round(1.28 * 11025)) and wave.dtype == np.float32
            peak = np.abs(np.fft.rfft(wave[0])).argmax() * 11025 / wave.shape[1]
            assert abs(peak - 440) < 5, (rate, channels, peak)


# ------------------------------------------------------------------ frame accuracy and A/V sync
def index_coded(tmp_path, kind: str):
    """Long GOP (250) with B-frames (or its ``avssl prepare`` copy); frame pixels spell their index."""
    n = 90
    if kind == "vfr":
        pts, t = [], Fraction(0)
        for i in range(n):
            pts.append(t)
            t += Fraction(1, 50) if i % 3 else Fraction(1, 12)  # irregular frame durations
        return write_media(tmp_path / "vfr.mp4", frames(n), pts=pts, gop=250, bframes=3, audio=tone(float(t) + 0.2, 16000))
    path = write_media(tmp_path / "ntsc.mp4", frames(n), fps=Fraction(30000, 1001), gop=250, bframes=3, audio=tone(3.1, 16000))
    if kind == "prepared":  # 25 fps, GOP 16, non-reference B-frames
        prepared = tmp_path / "prepared.mp4"
        assert prepare_file(str(path), str(prepared), PrepareConfig(short_side=64, audio_rate=16000))[1] == "prepared"
        return prepared
    return path


@pytest.mark.parametrize("backend", VIDEO_BACKENDS)
@pytest.mark.parametrize("kind", ["29.97fps", "vfr", "prepared"])
def test_random_windows_match_a_sequential_decode(tmp_path, kind, backend):
    """For random clip windows the decoded frame at each time is the one a sequential decode shows
    at that time."""
    path = index_coded(tmp_path, kind)
    reference = np.array(sequential_times(path))
    info = probe(str(path))
    decoder = ClipDecoder(str(path), info, short_side=64, sample_rate=16000, backend=backend)
    starts = RNG.uniform(0, info.duration - 1.28, size=5)
    times = decoder.frame_times(starts, 1.28, 8)
    got = decoder.video(times)
    shown = np.searchsorted(reference, times.reshape(-1) + 1e-4, side="right") - 1
    if kind == "prepared":  # prepared frame k shows the source frame displayed at its time
        source = np.array(sequential_times(tmp_path / "ntsc.mp4"))
        shown = np.searchsorted(source, reference[shown] + 1e-4, side="right") - 1
    for t, img, expected in zip(times.reshape(-1), got.reshape(-1, *got.shape[-3:]), shown):
        assert read_index(img) == expected, (kind, backend, t)


def count_decoded(monkeypatch) -> list:
    """Counts the video frames the PyAV backend decodes (one entry per frame)."""
    decoded, real = [], PyAVVideo.decode_from

    def counting(self, *args, **kwargs):
        for frame in real(self, *args, **kwargs):
            decoded.append(1)
            yield frame

    monkeypatch.setattr(PyAVVideo, "decode_from", counting)
    return decoded


@pytest.mark.parametrize("kind", ["29.97fps", "prepared"])
def test_pyav_skips_unshown_frames_without_changing_the_clip(tmp_path, kind, monkeypatch):
    """Dropping the unreferenced frames no clip shows leaves every decoded clip frame bit-equal;
    on a prepared copy (non-reference B-frames) it decodes far fewer frames."""
    path = str(index_coded(tmp_path, kind))
    info = probe(path)
    decoded = count_decoded(monkeypatch)
    times = ClipDecoder.frame_times(np.array([0.3, 1.4]), 1.28, 8)
    skipping = ClipDecoder(path, info, short_side=64, sample_rate=16000, backend="pyav").video(times)
    skipped = len(decoded)
    monkeypatch.setattr(video_pyav, "NONREF_SKIP_CODECS", ())  # decode every frame
    full = ClipDecoder(path, info, short_side=64, sample_rate=16000, backend="pyav").video(times)
    every = len(decoded) - skipped
    np.testing.assert_array_equal(skipping, full)
    assert skipped < every
    if kind == "prepared":
        assert skipped <= 0.6 * every, (skipped, every)


def test_pyav_clips_far_apart_seek_instead_of_decoding_between(tmp_path, monkeypatch):
    """Two clips in different GOPs: the PyAV path seeks to the second clip's keyframe instead of
    decoding every frame in between."""
    path = write_media(tmp_path / "gop12.mp4", frames(200), gop=12, audio=tone(8.1, 16000))
    reference = np.array(sequential_times(path))
    decoded = count_decoded(monkeypatch)
    decoder = ClipDecoder(str(path), probe(str(path)), short_side=64, sample_rate=16000, backend="pyav")
    times = decoder.frame_times(np.array([6.0, 0.2]), 1.28, 8)
    got = decoder.video(times)
    expected = np.searchsorted(reference, times.reshape(-1) + 1e-4, side="right") - 1
    assert [read_index(img) for img in got.reshape(-1, *got.shape[-3:])] == expected.tolist()
    assert len(decoded) <= 2 * (32 + 12) + 8  # two windows of 32 frames + up to a GOP each (+ reorder)


def test_flash_and_click_land_in_the_same_clip_position(tmp_path):
    fps, rate, t0 = 25, 16000, 1.52
    video = np.zeros((75, 64, 64, 3), np.uint8)
    video[int(t0 * fps)] = 255  # one white frame shown during [1.52, 1.56)
    audio = np.zeros((1, 3 * rate), np.float32)
    audio[0, int(t0 * rate) : int(t0 * rate) + 80] = 0.9  # a 5 ms click at 1.52 s
    path = write_media(tmp_path / "sync.mp4", video, fps=Fraction(fps), audio=audio, sample_rate=rate)
    decoder = ClipDecoder(str(path), probe(str(path)), short_side=64, sample_rate=rate)
    start = np.array([1.0])
    times = decoder.frame_times(start, 1.28, 32)  # 32 frames: one per 40 ms
    flash_pos = times[0, decoder.video(times)[0].mean(axis=(1, 2, 3)).argmax()] - start[0]
    wave = decoder.audio(start, 1.28)[0]
    click_pos = np.abs(wave).argmax() / rate
    assert abs(flash_pos - click_pos) <= 1 / fps + 1e-6, (flash_pos, click_pos)


# ------------------------------------------------------------------ workers: timeout, pickling, spawn
def test_hung_decode_fails_naming_the_file(tmp_path, good, monkeypatch):
    real = ClipDecoder.video

    def hang(self, times):
        if self.path == str(good):
            time.sleep(60)
        return real(self, times)

    monkeypatch.setattr(ClipDecoder, "video", hang)  # inherited by the forked worker
    ds = AVClipDataset([rec(good)], CLIP, train=False, num_clips=1)
    loader = TimeoutNamingLoader(ds, batch_size=1, sampler=EpochSampler(1, shuffle=False), num_workers=1, collate_fn=collate, timeout=3)
    with pytest.raises(RuntimeError, match=r"timed out after 3 s .*good\.mp4"):
        next(iter(loader))


def test_dataset_pickles_and_works_with_spawned_workers(good):
    ds = AVClipDataset([rec(good)], CLIP, train=True)
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[(0, 0)]["video"], ds[(0, 0)]["video"])
    loader = DataLoader(
        ds, batch_size=1, sampler=EpochSampler(1, shuffle=False), num_workers=1, collate_fn=collate, multiprocessing_context="spawn"
    )
    batch = next(iter(loader))
    assert torch.equal(batch["video"][0], ds[(0, 0)]["video"])


@pytest.mark.parametrize("backend", VIDEO_BACKENDS)
def test_forked_workers_decode_after_the_parent_did(good, backend):
    """The parent decodes first (its decoder caches exist), then forked workers decode: nothing
    inherited through fork may be used in the child (a cached swscale context deadlocked)."""
    ds = AVClipDataset([rec(good)] * 4, ClipSpec(**KW, video_backend=backend), train=True)
    expected = ds[(0, 0)]["video"]
    loader = DataLoader(
        ds,
        batch_size=2,
        sampler=EpochSampler(4, shuffle=False),
        num_workers=2,
        collate_fn=collate,
        multiprocessing_context="fork",
        timeout=30,
    )
    batches = list(loader)
    assert sum(b["video"].shape[0] for b in batches) == 4
    assert torch.equal(batches[0]["video"][0], expected)


def test_audio_windows_equal_a_sequential_decode(tmp_path):
    """Seek + pre-roll gives the same samples as decoding the AAC track from the start."""
    import av

    rng = np.random.default_rng(5)
    path = write_media(tmp_path / "aac.mp4", frames(75), audio=rng.uniform(-0.5, 0.5, (2, 48000)).astype(np.float32), sample_rate=16000)
    with av.open(str(path)) as container:
        reference = np.concatenate([f.to_ndarray().mean(0) for f in container.decode(audio=0)])
    decoder = ClipDecoder(str(path), probe(str(path)), short_side=32, sample_rate=16000)
    starts = np.array([1.61, 0.07, 0.9])  # later window first: the decoder seeks backwards too
    got = decoder.audio(starts, 1.28)
    for window, start in zip(got, starts):
        first = int(round(start * 16000))
        np.testing.assert_array_equal(window, reference[first : first + window.shape[0]])
