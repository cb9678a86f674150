"""Decoded frames and audio come from the requested time windows (pixels/samples encode time)."""

import numpy as np
import pytest

from avssl.data.decode import ClipDecoder, DecodeError, probe, resized_shape
from avssl.prepare.synthetic import write_av_mp4

FPS, DURATION, STEP_AT = 25, 3.0, 1.0


def gray(i: int) -> float:
    return 10.0 + 3.0 * i  # < 256 for the 75 frames


@pytest.fixture(scope="module")
def timed_file(tmp_path_factory):
    """Frame i is uniformly gray(i); audio is a 1 kHz tone whose amplitude steps 0.1 -> 0.6 at 1 s."""
    path = tmp_path_factory.mktemp("timed") / "timed.mp4"
    n = int(FPS * DURATION)
    frames = np.stack([np.full((48, 64, 3), gray(i), np.uint8) for i in range(n)])
    rate = 48000
    t = np.arange(int(DURATION * rate)) / rate
    audio = (np.where(t < STEP_AT, 0.1, 0.6) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    write_av_mp4(path, frames, audio, FPS, rate)
    return str(path)


def decoder(path, sample_rate=16000, short_side=32):
    return ClipDecoder(path, probe(path), short_side=short_side, sample_rate=sample_rate)


def test_probe_reads_metadata(timed_file):
    info = probe(timed_file)
    assert info.duration == pytest.approx(DURATION, abs=0.05)
    assert (info.width, info.height, info.audio_rate) == (64, 48, 48000)
    assert info.fps == pytest.approx(FPS)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_frames_come_from_the_requested_times(timed_file, backend):
    dec = ClipDecoder(timed_file, probe(timed_file), short_side=32, sample_rate=16000, backend=backend)
    times = np.array([[0.0, 0.05, 0.5, 1.01], [2.2, 2.99, 0.3, 1.5]])
    frames = dec.video(times)
    assert frames.shape == (2, 4, 32, 42, 3) and frames.dtype == np.uint8  # resized in the decoder
    expected = np.vectorize(lambda t: gray(int(np.floor(t * FPS + 1e-9))))(times)
    np.testing.assert_allclose(frames.reshape(2, 4, -1).mean(-1), expected, atol=3)  # decoders differ by ~2 levels in YUV->RGB


def test_clip_frame_times_are_spread_over_the_clip(timed_file):
    dec = decoder(timed_file)
    times = dec.frame_times(np.array([0.4]), clip_seconds=1.28, num_frames=8)
    assert times.shape == (1, 8)
    assert times.min() >= 0.4 and times.max() < 0.4 + 1.28
    np.testing.assert_allclose(np.diff(times[0]), 0.16)


def test_audio_window_is_aligned_and_resampled(timed_file):
    dec = decoder(timed_file, sample_rate=16000)
    starts = np.array([0.9, 0.2, 2.0])
    wave = dec.audio(starts, clip_seconds=0.2)
    assert wave.shape == (3, 3200) and wave.dtype == np.float32
    env = np.abs(wave[0])
    # The step at 1.0 s sits 0.1 s into the first window: find where the envelope crosses 0.35.
    smooth = np.convolve(env, np.ones(32) / 32, mode="same") * np.pi / 2  # mean |sin| -> amplitude
    crossing = np.argmax(smooth > 0.35) / 16000
    assert crossing == pytest.approx(0.1, abs=0.004)
    rms = np.sqrt((wave[1:] ** 2).mean(1))
    np.testing.assert_allclose(rms, [0.1 / np.sqrt(2), 0.6 / np.sqrt(2)], rtol=0.1)


def test_audio_past_the_end_is_silence(timed_file):
    wave = decoder(timed_file).audio(np.array([2.9]), clip_seconds=0.5)
    tail = wave[0, int(0.15 * 16000) :]
    assert np.abs(tail).max() < 1e-3 and np.abs(wave[0, :800]).max() > 0.3


def test_resized_shape_keeps_the_aspect():
    assert resized_shape(480, 640, 128) == (128, 170)
    assert resized_shape(640, 480, 128) == (170, 128)
    assert resized_shape(480, 640, None) == (480, 640)


def test_unreadable_files_raise_decode_errors(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(DecodeError) as err:
        probe(str(missing))
    assert err.value.reason == "missing"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(DecodeError) as err:
        probe(str(junk))
    assert err.value.reason == "unreadable"
