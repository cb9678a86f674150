"""Real-world media decoded as a player shows them: one timeline for video and audio (stream start
times, edit lists), display rotation and pixel aspect, every audio sample format in [-1, 1], one
full-scale policy, truncated files detected; the same through both video backends and through
``avssl prepare`` copies."""

from __future__ import annotations

import csv
import json
from fractions import Fraction

import av
import numpy as np
import pytest

from avssl.data.decode import VIDEO_BACKENDS, ClipDecoder, audio_samples, probe
from avssl.data.formats import PrepareConfig
from avssl.data.prepared import probe_file
from avssl.prepare.mp4 import prepare

from .media import PCM_FORMATS, index_frame, pcm, read_index, sequential_times, write_media

FPS = 25
RATE = 16000


def frames(n: int, height: int = 64, width: int = 64) -> np.ndarray:
    return np.stack([index_frame(i, height, width) for i in range(n)])


def bursts(seconds: float, at: list[float]) -> np.ndarray:
    """Silence with a 0.1 s tone burst starting at each time of ``at`` (seconds from the stream's
    first sample)."""
    audio = np.zeros((1, int(seconds * RATE)), np.float32)
    t = np.arange(int(0.1 * RATE)) / RATE
    for start in at:
        i = int(start * RATE)
        audio[0, i : i + len(t)] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    return audio


def onset(wave: np.ndarray) -> float:
    """Time (s from the window's start) where the burst in ``wave`` begins."""
    return float(np.argmax(np.abs(wave) > 0.1)) / RATE


def decoders(path, short_side=64):
    info = probe_file(str(path))  # as the index opens it: a prepared copy's sidecar named by its report
    return {b: ClipDecoder(str(path), info, short_side=short_side, sample_rate=RATE, backend=b) for b in VIDEO_BACKENDS}


def prepared_copy(src_dir, tmp_path, **kwargs):
    dst = tmp_path / "prepared"
    report = prepare(src_dir, dst, PrepareConfig(short_side=64, fps=FPS, audio_rate=RATE, **kwargs), workers=1, progress=False)
    return dst, report


# ------------------------------------------------------------------ one timeline
# (video start, audio start) in file seconds: both late; video late; audio late
OFFSETS = [(1.0, 1.0), (0.48, 0.0), (0.0, 1.0)]


def offset_file(directory, video_start: float, audio_start: float):
    """3 s of index frames from ``video_start`` and audio bursts at file times 1.6 and 2.8 s,
    which frames 15 (1.6 - 1.0) ... show when the video starts at 1.0 s."""
    pts = [Fraction(video_start).limit_denominator(100) + Fraction(i, FPS) for i in range(3 * FPS)]
    audio = bursts(3.5, [1.6 - audio_start, 2.8 - audio_start])
    return write_media(directory / "offset.mp4", frames(3 * FPS), pts=pts, audio=audio, sample_rate=RATE, audio_start=audio_start)


@pytest.mark.parametrize("video_start,audio_start", OFFSETS)
def test_video_and_audio_share_one_timeline(tmp_path, video_start, audio_start):
    """Timeline 0 is the earliest stream's start; the frame and the audio at a time are the ones a
    player presents together, whatever each stream's start time (mp4 writes it as an edit list)."""
    path = offset_file(tmp_path, video_start, audio_start)
    origin = probe(str(path)).start  # the earliest stream's start (an AAC stream's priming samples count)
    assert min(video_start, audio_start) - 0.1 < origin <= min(video_start, audio_start) + 1e-6
    for backend, decoder in decoders(path).items():
        burst = 1.6 - origin  # timeline time of the first burst
        times = np.array([[burst + 0.02, burst + 1.22]])
        shown = [read_index(f) for f in decoder.video(times)[0]]
        expected = [int((t - (video_start - origin)) * FPS) for t in times[0]]
        assert shown == expected, backend
        wave = decoder.audio(np.array([burst - 0.5]), 1.0)[0]
        assert abs(onset(wave) - 0.5) < 0.01, backend


@pytest.mark.parametrize("video_start,audio_start", OFFSETS)
def test_every_frame_of_a_late_starting_file_with_b_frames_is_the_one_shown(tmp_path, video_start, audio_start):
    """With B-frames, the PyAV backend decides which packets it may drop by their display times:
    on the timeline, like the wanted times (a file whose streams start late has file times
    ``start`` seconds ahead). Every time of a grid, in one window and one time at a time."""
    n = 4 * FPS
    pts = [Fraction(video_start).limit_denominator(100) + Fraction(i, FPS) for i in range(n)]
    path = write_media(
        tmp_path / "late_b.mp4", frames(n), pts=pts, audio=bursts(4.5, [0.5]), sample_rate=RATE, audio_start=audio_start, bframes=3, gop=25
    )
    info = probe(str(path))
    times = np.round(np.arange(0.02, 4.0, 0.04), 4)
    truth = np.clip(np.floor((times - (info.video_start - info.start)) * FPS + 1e-6), 0, n - 1).astype(int)
    for backend, decoder in decoders(path).items():
        window = [read_index(f) for f in decoder.video(times[None])[0]]
        one_by_one = [read_index(decoder.video(np.array([[t]]))[0, 0]) for t in times]
        assert window == truth.tolist() and one_by_one == truth.tolist(), backend


def test_pyav_is_the_default_and_decord_hands_late_starting_files_to_pyav(tmp_path, monkeypatch):
    """decord was measured up to 3 frames off on a file whose streams both start at 1.0 s; under
    the decord backend such files (timeline not starting at 0) are decoded by PyAV, others by decord."""
    from avssl.data.decode.video_decord import DecordVideo

    calls = []
    original = DecordVideo.frames
    monkeypatch.setattr(DecordVideo, "frames", lambda self, times: calls.append(self.path) or original(self, times))
    late = offset_file(tmp_path, 1.0, 1.0)
    plain = write_media(tmp_path / "plain.mp4", frames(2 * FPS), audio=bursts(2.0, [0.5]), sample_rate=RATE)
    from avssl.data.dataset import ClipSpec

    assert (
        ClipSpec().video_backend == "pyav" and ClipDecoder(str(plain), probe(str(plain)), short_side=64, sample_rate=RATE).backend == "pyav"
    )
    for path in (late, plain):
        decoder = decoders(path)["decord"]
        assert len(decoder.video(np.array([[0.3, 1.2]]))[0]) == 2
    assert calls == [str(plain)]


def test_prepared_copy_keeps_a_late_audio_stream_in_place(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    offset_file(src, 0.0, 1.0)  # audio starts 1 s after the video
    dst, report = prepared_copy(src, tmp_path)
    assert report["files"]["offset.mp4"]["status"] == "prepared"
    decoder = decoders(dst / "offset.mp4")["pyav"]
    assert decoder.info.sidecar is not None
    wave = decoder.audio(np.array([1.1]), 1.0)[0]
    assert abs(onset(wave) - 0.5) < 0.01  # the burst at 1.6 s stays at 1.6 s
    assert np.abs(decoder.audio(np.array([0.0]), 1.0)[0]).max() < 1e-3  # silence before the stream starts
    assert read_index(decoder.video(np.array([[1.62]]))[0, 0]) == 40


# ------------------------------------------------------------------ codecs and containers
# (container, video codec, audio codec): the common ones of downloaded and camera files
CODECS = [
    ("mp4", "libx264", "aac"),
    ("mkv", "libx265", "libopus"),
    ("webm", "libvpx-vp9", "libopus"),
    ("mp4", "libsvtav1", "aac"),
    ("mkv", "mpeg4", "libmp3lame"),
    ("mov", "libx264", "libmp3lame"),
    ("avi", "mjpeg", "pcm_s16le"),
    ("mov", "prores_ks", "pcm_s24le"),
    ("mkv", "ffv1", "flac"),
]


@pytest.mark.parametrize("container,video_codec,audio_codec", CODECS, ids=["-".join(c) for c in CODECS])
def test_every_codec_gives_the_frames_and_audio_a_sequential_decode_gives(tmp_path, container, video_codec, audio_codec):
    """Random windows of every codec / container: each frame is the one a frame-by-frame decode
    from the start shows at that time (no frame lost to decoder frame skipping, e.g. AV1's hidden
    frames), and the audio burst lands where it was written, through both video backends."""
    path = write_media(
        tmp_path / f"media.{container}", frames(3 * FPS), audio=bursts(3.0, [1.6]), audio_codec=audio_codec, video_codec=video_codec
    )
    starts = sequential_times(path)
    # random clips, and single frames (most packets unshown: skipped where the decoder may skip)
    requests = [np.sort(np.random.default_rng(0).uniform(0, 2.95, (4, 6)), axis=1), np.array([[0.3]]), np.array([[1.5]])]
    for backend in VIDEO_BACKENDS:
        for times in requests:
            expected = [[int(np.searchsorted(starts, t + 1e-4, side="right")) - 1 for t in row] for row in times]
            shown = [[read_index(f) for f in clip] for clip in decoders(path)[backend].video(times)]
            assert shown == expected, (backend, times)
        assert abs(onset(decoders(path)[backend].audio(np.array([1.1]), 1.0)[0]) - 0.5) < 0.01, backend


# ------------------------------------------------------------------ display geometry
def marker(height: int, width: int) -> np.ndarray:
    """Red top-left, green top-right, blue bottom-left, black bottom-right quadrant."""
    img = np.zeros((height, width, 3), np.uint8)
    img[: height // 2, : width // 2, 0] = 255
    img[: height // 2, width // 2 :, 1] = 255
    img[height // 2 :, : width // 2, 2] = 255
    return img


def corners(frame: np.ndarray) -> list[str]:
    """Colour names at the top-left, top-right, bottom-left, bottom-right corners."""
    h, w = frame.shape[:2]
    names = []
    for y, x in ((h // 8, w // 8), (h // 8, w - 1 - w // 8), (h - 1 - h // 8, w // 8), (h - 1 - h // 8, w - 1 - w // 8)):
        r, g, b = frame[y, x] > 127
        names.append({(1, 0, 0): "red", (0, 1, 0): "green", (0, 0, 1): "blue", (0, 0, 0): "black"}[(r, g, b)])
    return names


# counter-clockwise display rotation -> the corners as a player shows them (TL, TR, BL, BR)
ROTATED = {
    0: ["red", "green", "blue", "black"],
    90: ["green", "black", "red", "blue"],
    180: ["black", "blue", "green", "red"],
    270: ["blue", "red", "black", "green"],
}


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_video_is_shown_upright_by_both_backends_and_prepared_copies(tmp_path, rotation):
    src = tmp_path / "src"
    src.mkdir()
    coded = np.repeat(marker(32, 64)[None], 50, 0)  # landscape 64 x 32 as coded
    write_media(src / "phone.mp4", coded, audio=bursts(2.0, []), rotation=rotation)
    portrait = rotation in (90, 270)
    info = probe(str(src / "phone.mp4"))
    assert (info.rotation, (info.height, info.width)) == (rotation, (64, 32) if portrait else (32, 64))
    for backend, decoder in decoders(src / "phone.mp4", short_side=32).items():
        frame = decoder.video(np.array([[0.5]]))[0, 0]
        assert frame.shape == ((64, 32, 3) if portrait else (32, 64, 3)), backend
        assert corners(frame) == ROTATED[rotation], backend
    dst, _ = prepared_copy(src, tmp_path)
    copy = decoders(dst / "phone.mp4", short_side=32)["pyav"]
    assert copy.info.rotation == 0
    frame = copy.video(np.array([[0.5]]))[0, 0]
    assert frame.shape == ((64, 32, 3) if portrait else (32, 64, 3)) and corners(frame) == ROTATED[rotation]


def test_non_square_pixels_are_stretched_to_the_display_aspect(tmp_path):
    path = write_media(tmp_path / "sar.mp4", np.repeat(marker(32, 32)[None], 50, 0), audio=bursts(2.0, []), sample_aspect=Fraction(2, 1))
    info = probe(str(path))
    assert (info.height, info.width) == (32, 64)  # 32 x 32 coded pixels, each twice as wide as tall
    for backend, decoder in decoders(path, short_side=32).items():
        frame = decoder.video(np.array([[0.5]]))[0, 0]
        assert frame.shape == (32, 64, 3) and corners(frame) == ROTATED[0], backend


# ------------------------------------------------------------------ audio sample formats
FORMATS = [("u8", np.uint8), ("s16", np.int16), ("s32", np.int32), ("flt", np.float32), ("dbl", np.float64)]


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("fmt,dtype", FORMATS)
def test_every_sample_format_is_scaled_to_full_scale(fmt, dtype, planar):
    """A stereo -0.5 / +0.75 pair of constant channels reads as their mean, 0.125, in every format;
    the format's most negative value reads -1 (no DC offset for unsigned 8-bit)."""
    fmt_name = fmt + ("p" if planar else "")
    left, right = np.full(256, -0.5), np.full(256, 0.75)
    channels = np.stack([pcm(left, dtype), pcm(right, dtype)])
    data = channels if planar else channels.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt_name, layout="stereo")
    samples = audio_samples(frame)
    assert samples.dtype == np.float32 and samples.shape == (256,)
    np.testing.assert_allclose(samples, 0.125, atol=1 / 128)
    lowest = np.iinfo(dtype).min if np.issubdtype(dtype, np.integer) else -1.0
    floor = np.full((2, 4), lowest, dtype) if planar else np.full((1, 8), lowest, dtype)
    assert np.allclose(audio_samples(av.AudioFrame.from_ndarray(floor, format=fmt_name, layout="stereo")), -1.0)


@pytest.mark.parametrize("codec", sorted(PCM_FORMATS) + ["aac", "flac"])
def test_every_audio_codec_decodes_without_offset_or_gain(tmp_path, codec):
    """A 0.5-amplitude tone through a real container reads back at 0.5 with no DC offset."""
    t = np.arange(2 * RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 300 * t))[None].repeat(2, 0)
    path = write_media(tmp_path / f"{codec}.mkv", frames(50), audio=tone, audio_codec=codec)
    wave = decoders(path)["pyav"].audio(np.array([0.5]), 1.0)[0]
    assert abs(wave.mean()) < 0.01 and abs(np.abs(wave).max() - 0.5) < 0.03


def test_audio_above_full_scale_is_clipped_alike_in_raw_and_prepared_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(2 * RATE) / RATE
    write_media(src / "loud.mkv", frames(50), audio=(1.5 * np.sin(2 * np.pi * 300 * t))[None], audio_codec="pcm_f32le")
    raw = decoders(src / "loud.mkv")["pyav"].audio(np.array([0.5]), 1.0)[0]
    dst, _ = prepared_copy(src, tmp_path)
    copy = decoders(dst / "loud.mp4")["pyav"].audio(np.array([0.5]), 1.0)[0]
    assert raw.max() == pytest.approx(1.0) and raw.min() == pytest.approx(-1.0)
    assert np.abs(raw - copy).max() < 1e-3


# ------------------------------------------------------------------ a zoo of the cases above
def write_zoo(src):
    """A manifest over the fidelity cases: streams that start at 1.0 s (with B-frames), a phone
    video rotated 90 degrees, an odd display size with stereo 24-bit PCM, unsigned 8-bit audio, a
    4:3 file, and a broken file and a listed file that is missing (both must be reported)."""
    late = [1 + i / FPS for i in range(3 * FPS)]
    write_media(
        src / "late.mp4",
        frames(3 * FPS),
        pts=[Fraction(t).limit_denominator(1000) for t in late],
        audio=bursts(3.0, [0.6, 1.8]),
        audio_start=1.0,
    )
    write_media(src / "phone.mp4", np.repeat(marker(32, 64)[None], 60, 0), audio=bursts(2.4, [1.0]), rotation=90)
    stereo = np.concatenate([bursts(2.6, [0.7]), bursts(2.6, [1.9])])
    write_media(src / "odd.mkv", frames(65, 40, 72), audio=stereo, audio_codec="pcm_s24le")
    write_media(src / "u8.mov", frames(70, 48, 64), audio=bursts(2.8, [1.2]), audio_codec="pcm_u8")
    (src / "broken.mp4").write_bytes(b"\x00" * 64)
    rows = [
        ("late.mp4", 0, "train"),
        ("phone.mp4", 1, "train"),
        ("odd.mkv", 0, "train"),
        ("u8.mov", 1, "test"),
        ("broken.mp4", 1, "train"),
        ("gone.mp4", 0, "train"),
    ]
    with open(src / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)
    return src


# ------------------------------------------------------------------ truncated files
def truncated_mkv(directory):
    """3 s .mkv cut after ~45 % of its bytes: the header still says 3 s."""
    path = write_media(directory / "cut.mkv", frames(3 * FPS), audio=bursts(3.0, []), audio_codec="pcm_s16le", gop=5)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.45)])
    return path


def test_windows_past_the_real_end_of_a_truncated_file_are_flagged(tmp_path):
    path = truncated_mkv(tmp_path)
    assert probe(str(path)).duration == pytest.approx(3.0, abs=0.1)
    for backend, decoder in decoders(path).items():
        decoder.video(np.array([[0.2, 0.6]]))
        assert not decoder.truncated, backend
        decoder.video(np.array([[2.5, 2.9]]))
        assert decoder.truncated, backend


def test_prepare_reports_a_truncated_source_instead_of_preparing_it(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    truncated_mkv(src)
    dst, report = prepared_copy(src, tmp_path)
    entry = report["files"]["cut.mkv"]
    assert entry["status"] == "truncated" and "of the 3.00 s" in entry["detail"]
    assert report["skipped_by_reason"] == {"truncated": 1} and not (dst / "cut.mp4").exists()


# ------------------------------------------------------------------ prepare accounts for every source
def test_prepare_never_loses_mixes_or_guesses(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    tone = bursts(2.0, [0.5])
    write_media(src / "clip.mp4", frames(50), audio=tone)
    write_media(src / "clip.mkv", frames(50)[::-1].copy(), audio=tone, audio_codec="pcm_s16le")
    write_media(src / "the.party.mp4", frames(50), audio=tone)
    (src / "gone.mp4").symlink_to(src / "nowhere.mp4")
    nan_audio = tone.copy()
    nan_audio[0, 100:110] = np.nan
    write_media(src / "nan.mkv", frames(50), audio=nan_audio, audio_codec="pcm_f32le")
    dst, report = prepared_copy(src, tmp_path)
    files = report["files"]
    assert set(files) == {"clip.mp4", "clip.mkv", "the.party.mp4", "gone.mp4", "nan.mkv"}
    assert files["clip.mp4"]["output"] == "clip.mp4" and files["clip.mkv"]["output"] == "clip.mkv.mp4"
    assert report["renamed"] == {"clip.mkv": "clip.mkv.mp4"}
    first = {name: read_index(decoders(dst / name)["pyav"].video(np.array([[0.02]]))[0, 0]) for name in ("clip.mp4", "clip.mkv.mp4")}
    assert first == {"clip.mp4": 0, "clip.mkv.mp4": 49}  # two copies, each of its own source
    assert files["the.party.mp4"]["status"] == "prepared" and (dst / "the.party.mp4").is_file()
    assert files["gone.mp4"]["status"] == "dangling_link" and report["skipped_by_reason"] == {"dangling_link": 1}
    assert files["nan.mkv"]["nonfinite_audio_samples"] == 10 and report["nonfinite_audio_files"] == 1
    assert report["videos"] == 5 and report["prepared"] == 4
    assert json.loads((dst / "prepare_report.json").read_text())["files"] == files


def test_a_wav_sharing_a_videos_name_is_not_its_audio(tmp_path):
    """Only a sidecar listed in a prepare report replaces a video's audio track."""
    import wave as wavefile

    path = write_media(tmp_path / "clip.mp4", frames(50), audio=bursts(2.0, [0.5]))
    for channels in (1, 2):  # an unrelated WAV of another length and layout
        with wavefile.open(str(tmp_path / "clip.wav"), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(np.zeros(8000 * channels, "<i2").tobytes())
        info = probe(str(path))
        assert info.sidecar is None and info.audio_rate == RATE
        wave = ClipDecoder(str(path), info, short_side=64, sample_rate=RATE).audio(np.array([0.0]), 1.0)[0]
        assert abs(onset(wave) - 0.5) < 0.01


def test_the_dataset_counts_truncated_windows(tmp_path):
    from avssl.data.batch import collate
    from avssl.data.dataset import AVClipDataset, ClipSpec
    from avssl.data.layouts import VideoRecord

    path = truncated_mkv(tmp_path)
    dataset = AVClipDataset(
        [VideoRecord(str(path), 0, "cut")], ClipSpec(clip_seconds=0.64, sample_rate=RATE, short_side=32), train=False, num_clips=4
    )
    batch = collate([dataset[0]])
    assert batch["num_truncated_video"] == 1 and batch["num_failed"] == 0


def test_torchcodec_backend_names_what_to_install(monkeypatch):
    """torchcodec missing, or FFmpeg's libraries missing: one line naming what to install, when
    the data settings are read (before any decoding)."""
    import importlib.util
    import sys

    from avssl.data.dataset import ClipSpec
    from avssl.errors import ConfigError

    assert ClipSpec(video_backend="torchcodec").video_backend == "torchcodec"  # installed here (CI too)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # as when its FFmpeg libraries do not load
    with pytest.raises(ConfigError, match=r"data.video_backend: torchcodec cannot load FFmpeg .*apt install libavcodec"):
        ClipSpec(video_backend="torchcodec")
    assert ClipSpec(video_backend="torchcodec", streams=("audio",)).streams == ("audio",)  # no video: not needed
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchcodec" else real(name, *a))
    with pytest.raises(ConfigError, match=r"torchcodec is not installed: pip install 'avssl\[torchcodec\]'"):
        ClipSpec(video_backend="torchcodec")
