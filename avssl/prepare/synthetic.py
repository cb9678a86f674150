"""The embedded synthetic audiovisual dataset: real H.264 + AAC mp4 files.

Each of the ``K`` classes is carried by each stream on its own, by cues that survive that
stream's training augmentations, the way a real event does:

* video: what the whole frame looks like and how it moves — a random texture (a sum of plane
  waves) covering the frame whose *family* is the class's (horizontal stripes, vertical stripes,
  both diagonals, a grid, coarse blobs, fine grain, two-wave interference, or any orientation),
  moving with the class's motion (drifting vertically, horizontally or diagonally, expanding,
  contracting, rotating, flickering or pulsing). Both cues fill the frame, so any crop shows the
  class, and every family and motion is its own mirror image (orientations, directions and
  centres are nuisances), so a horizontal flip keeps it (docs/studies/demo.md says why the
  class has an appearance as well as a motion);
* audio: the contour of a tone (rising / falling chirp, vibrato, fast / slow pulses,
  two-tone alternation, up-down sweep, stepped staircase).

Class ``k`` uses motion and texture family ``k % 8`` and contour ``(k + k // 8) % 8``, so up to 64
classes have distinct (video, contour) pairs.

Everything else is nuisance and is **redrawn every segment** (0.5 s by default): the texture
within its family, its two colours, speed, direction, centre and pixel noise; the base pitch (two
octaves), timbre (harmonic weights), loudness, contour rate and background noise. A nuisance held for a whole
video would be a fingerprint shared by two clips of that video, and contrastive learning would
match it instead of the class; redrawn over time, the class is the only thing the two clips of a
video have in common. The audio's and the video's segment boundaries are shifted independently,
so the timing of the redraws does not tie a clip's audio to its video either.

Generation is deterministic from ``seed``: video ``i`` draws from ``numpy.random.default_rng([seed,
i])``. The dataset is written once under ``root`` with a ``manifest.csv`` (``path,label,split``)
and reused as long as the recorded parameters (the spec and
:data:`~avssl.data.layouts.synthetic.GENERATOR_VERSION`) match.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np

from avssl.data.formats import MANIFEST, SYNTHETIC_PARAMS
from avssl.data.layouts.synthetic import MOTIONS, SyntheticSpec, class_pattern
from avssl.errors import ConfigError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- segments
def _segments(t: np.ndarray, spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
    """Segment index of every time ``t``, the number of segments and the boundaries' shift: every
    ``spec.segment`` seconds, shifted by a random fraction of a segment drawn per stream, so the
    audio's and the video's nuisance changes are not synchronised (their timing would otherwise
    identify a clip across the streams)."""
    shift = rng.uniform(0, spec.segment)
    n_seg = int(math.ceil((spec.duration + shift) / spec.segment))
    return np.minimum(((t + shift) / spec.segment).astype(int), n_seg - 1), n_seg, shift


# --------------------------------------------------------------------------- video
FAMILIES = ("horizontal", "vertical", "diagonals", "grid", "coarse", "fine", "sparse", "dense")  # sparse: no clutter


def _texture_waves(
    rng: np.random.Generator, family: str = "any", count: int = 4, clutter: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random 2-D texture as a sum of plane waves: ``count`` of the class's family (orientations
    closed under a horizontal flip) plus ``clutter`` of any orientation (nuisance that hides the
    family from features that do not look for it): wave vectors ``[K, 2]`` (cycles per frame
    side), phases ``[K]`` and amplitudes ``[K]``."""
    jitter = rng.normal(0, math.radians(8), count)
    freq = rng.uniform(1.5, 3.5, count)
    if family == "horizontal":
        angle = math.pi / 2 + jitter
    elif family == "vertical":
        angle = jitter
    elif family == "diagonals":
        angle = rng.choice([math.pi / 4, 3 * math.pi / 4], count) + jitter
    elif family == "grid":
        angle = rng.choice([0.0, math.pi / 2], count) + jitter
    elif family == "coarse":
        angle, freq = rng.uniform(0, 2 * math.pi, count), rng.uniform(0.8, 1.4, count)
    elif family == "fine":
        angle, freq = rng.uniform(0, 2 * math.pi, count), rng.uniform(4.0, 5.5, count)
    else:  # any orientation (also the "dense" family)
        angle = rng.uniform(0, 2 * math.pi, count)
    angle = np.concatenate([angle, rng.uniform(0, 2 * math.pi, clutter)])
    freq = np.concatenate([freq, rng.uniform(1.5, 3.5, clutter)])
    amp = np.concatenate([rng.uniform(0.5, 1.0, count), rng.uniform(0.3, 0.6, clutter)])
    return np.stack([freq * np.cos(angle), freq * np.sin(angle)], 1), rng.uniform(0, 1, count + clutter), amp


def _sample_texture(waves: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The texture in [-1, 1] at positions ``x``, ``y`` (frame sides; any matching shapes)."""
    k, phase, amp = waves
    total = sum(a * np.sin(2 * math.pi * (kx * x + ky * y + p)) for (kx, ky), p, a in zip(k, phase, amp))
    return np.tanh(1.5 * total / np.sqrt(np.square(amp).sum()))


def _motion_coordinates(motion: str, u: np.ndarray, v: np.ndarray, t: np.ndarray, nuisance: dict) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel (``u``, ``v`` in [0, 1], ``[1, S, S]``) reads the texture at times ``t``
    (seconds since the segment began, ``[F, 1, 1]``): the class's motion of the whole frame."""
    speed, (cx, cy), sign = nuisance["speed"], nuisance["centre"], nuisance["sign"]
    if motion == "drift_vertical":  # up or down
        return u + 0 * t, v - sign * speed * t
    if motion == "drift_horizontal":  # left or right
        return u - sign * speed * t, v + 0 * t
    if motion == "drift_diagonal":  # along either diagonal, either way
        dx, dy = nuisance["diagonal"]
        return u - dx * speed * t / math.sqrt(2), v - dy * speed * t / math.sqrt(2)
    if motion in ("expand", "contract"):  # about a centre in the frame
        scale = np.exp((-1.0 if motion == "expand" else 1.0) * 2.0 * speed * t)
        return cx + (u - cx) * scale, cy + (v - cy) * scale
    if motion == "rotate":  # either direction
        angle = sign * 2 * math.pi * 0.5 * speed * t
        cos, sin = np.cos(angle), np.sin(angle)
        return cx + (u - cx) * cos - (v - cy) * sin, cy + (u - cx) * sin + (v - cy) * cos
    if motion in ("flicker", "pulse"):  # the texture stays in place
        return u + 0 * t, v + 0 * t
    raise ValueError(f"unknown motion {motion!r}")


def _render_video(motion: str, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """uint8 frames ``[F, H, W, 3]``: a random texture over the whole frame moving with the class's
    motion; the texture, colours, speed, direction, centre and noise are redrawn every segment
    (motion continuous within a segment)."""
    n_frames = int(round(spec.duration * spec.fps))
    s = spec.size
    t = np.arange(n_frames) / spec.fps
    seg, n_seg, shift = _segments(t, spec, rng)
    v, u = (np.mgrid[0:s, 0:s].astype(np.float64) + 0.5) / s
    frames = np.empty((n_frames, s, s, 3), np.float64)
    for k in range(n_seg):
        at = seg == k
        if not at.any():
            continue
        nuisance = {
            "speed": rng.uniform(0.3, 0.5),  # frame sides per second
            "centre": rng.uniform(0.3, 0.7, 2),
            "sign": rng.choice([-1.0, 1.0]),
            "diagonal": (rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0])),
        }
        local = (t[at] - (k + 0.5) * spec.segment + shift)[:, None, None]  # time from the segment's middle
        x, y = _motion_coordinates(motion, u[None], v[None], local, nuisance)
        family = FAMILIES[MOTIONS.index(motion)]
        waves = _texture_waves(rng, family, count=2, clutter=0) if family == "sparse" else _texture_waves(rng, family)
        texture = _sample_texture(waves, x, y)  # [F, S, S]
        rate = rng.uniform(1.0, 1.6)  # flicker / pulse cycles per second (below 8 frames per 1.28 s Nyquist)
        if motion == "flicker":  # contrast reversal
            texture = texture * np.cos(2 * math.pi * rate * local)
        elif motion == "pulse":  # brightness up and down, texture static
            texture = 0.4 * texture + 0.6 * np.cos(2 * math.pi * rate * local)
        low, high = rng.uniform(0, 100, 3), rng.uniform(155, 255, 3)  # two colours that always differ
        if rng.random() < 0.5:
            low, high = high, low
        weight = 0.5 + 0.5 * rng.uniform(0.6, 1.0) * np.clip(texture, -1, 1)
        frames[at] = low + (high - low) * weight[..., None] + rng.normal(0, rng.uniform(0, 10), (int(at.sum()), s, s, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- audio
def _contour(contour: str, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pitch offset in octaves and an amplitude envelope in [0, 1] for contour phase (cycles)."""
    frac = phase % 1.0
    one = np.ones_like(phase)
    if contour == "rise":
        return frac - 0.5, one
    if contour == "fall":
        return 0.5 - frac, one
    if contour == "vibrato":
        return 0.15 * np.sin(2 * math.pi * 4 * phase), one
    if contour == "fast_pulses":
        return np.zeros_like(phase), (np.sin(2 * math.pi * 6 * phase) > 0).astype(np.float64)
    if contour == "slow_pulses":
        return np.zeros_like(phase), (np.sin(2 * math.pi * 1.5 * phase) > 0).astype(np.float64)
    if contour == "two_tone":
        return np.where(np.sin(2 * math.pi * 2 * phase) > 0, 0.5, 0.0) - 0.25, one
    if contour == "up_down":
        return np.abs(2 * frac - 1) - 0.5, one
    if contour == "staircase":
        return np.floor(frac * 4) / 4 - 0.4, one
    raise ValueError(f"unknown contour {contour!r}")


def _render_audio(contour: str, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """float32 mono waveform ``[S]`` in [-1, 1]."""
    n = int(round(spec.duration * spec.sample_rate))
    t = np.arange(n) / spec.sample_rate
    seg, n_seg, _ = _segments(t, spec, rng)
    base = np.exp(rng.uniform(np.log(220), np.log(880), n_seg))  # two octaves
    harmonics = rng.uniform(0, 1, (n_seg, 3)) * np.array([1.0, 0.5, 0.25])
    loud = rng.uniform(0.3, 0.7, n_seg)
    noise = rng.uniform(0.0, 0.08, n_seg)
    rate = rng.uniform(0.8, 1.25, n_seg)  # contour cycles per second
    phase = rng.random() + np.concatenate([[0.0], np.cumsum(rate[seg][:-1] / spec.sample_rate)])
    octave, env = _contour(contour, phase)
    freq = base[seg] * 2.0**octave
    carrier = 2 * math.pi * np.cumsum(freq) / spec.sample_rate
    h = harmonics[seg]
    wave = np.sin(carrier) + h[:, 0] * np.sin(2 * carrier) + h[:, 1] * np.sin(3 * carrier) + h[:, 2] * np.sin(4 * carrier)
    wave = wave / (1 + h.sum(1))
    # Short ramps on the envelope avoid clicks that would put broadband energy at every edge.
    ramp = max(1, int(0.004 * spec.sample_rate))
    env = np.convolve(env, np.ones(ramp) / ramp, mode="same")
    out = loud[seg] * env * wave + noise[seg] * rng.normal(0, 1, n)
    return np.clip(out, -1, 1).astype(np.float32)


# --------------------------------------------------------------------------- encoding
def write_av_mp4(path: Path, frames: np.ndarray, audio: np.ndarray | None, fps: int, sample_rate: int, gop: int = 12) -> None:
    """Write uint8 frames ``[F, H, W, 3]`` (H.264, yuv420p) and mono float audio (AAC) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        # Byte-identical output needs one thread and no macroblock-tree rate control: with
        # either, repeated encodes of the same frames differed (measured, PyAV 18 / libx264).
        vstream.options = {"crf": "18", "g": str(gop), "preset": "veryfast", "x264-params": "threads=1:mbtree=0"}
        vstream.codec_context.thread_count = 1
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=sample_rate, layout="mono")
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i  # explicit time stamps (stream time base 1/fps)
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            chunk = 1024
            for start in range(0, len(audio), chunk):
                block = audio[start : start + chunk][None, :]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    tmp.replace(path)  # atomic: a half-written file never carries the final name


def _split_of(position: int, n: int, spec: SyntheticSpec) -> str:
    """Per-class split: the first videos of each class go to test, then val, the rest train."""
    n_test = max(1, int(round(n * spec.test_fraction)))
    n_val = max(1, int(round(n * spec.val_fraction)))
    if position < n_test:
        return "test"
    if position < n_test + n_val:
        return "val"
    return "train"


def generate(root: str | Path, spec: SyntheticSpec = SyntheticSpec(), progress: bool = True, workers: int | None = None) -> Path:
    """Write the dataset under ``root`` (once) and return the manifest path. ``workers`` threads
    write the videos (default: one per CPU core, at most 8; NumPy and FFmpeg run without the GIL);
    each video depends on ``(spec.seed, its index)`` alone, so the files are the same for any
    number of workers.

    Re-running with the same ``spec`` reuses the files; a different ``spec`` on an existing root
    is an error rather than a silent overwrite.
    """
    root = Path(root)
    manifest = root / MANIFEST
    params_file = root / SYNTHETIC_PARAMS
    if manifest.exists() and params_file.exists():
        stored = json.loads(params_file.read_text())
        if stored != spec.params():
            raise ConfigError(
                f"{root} holds a synthetic dataset built with {stored}, not {spec.params()}; choose another root or delete it"
            )
        return manifest
    root.mkdir(parents=True, exist_ok=True)
    items = [(label, j) for label in range(spec.num_classes) for j in range(spec.videos_per_class)]
    paths = [root / f"videos/{label:02d}_{j:04d}.mp4" for label, j in items]
    todo = [(path, spec, i, label) for i, (path, (label, _)) in enumerate(zip(paths, items)) if not path.exists()]  # resumable
    workers = max(1, min(workers or os.cpu_count() or 1, 8, len(todo) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in _progress(pool.map(_write_video, todo), len(todo), progress):
            pass
    rows = [(path.relative_to(root).as_posix(), label, _split_of(j, spec.videos_per_class, spec)) for path, (label, j) in zip(paths, items)]
    with open(manifest.with_suffix(".tmp"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)
    params_file.write_text(json.dumps(spec.params(), indent=2))
    manifest.with_suffix(".tmp").replace(manifest)
    return manifest


def _write_video(job: tuple[Path, SyntheticSpec, int, int]) -> None:
    """Render and write video ``index`` (of class ``label``) to ``path``."""
    path, spec, index, label = job
    rng = np.random.default_rng([spec.seed, index])
    motion, contour = class_pattern(label)
    write_av_mp4(path, _render_video(motion, spec, rng), _render_audio(contour, spec, rng), spec.fps, spec.sample_rate)


def _progress(items, total: int, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with pytorch-lightning
        return items
    return tqdm(items, total=total, desc="synthetic dataset", unit="video")


# ---------------------------------------------------------------------------- avssl synth
def add_arguments(parser) -> None:
    from avssl.cli.arguments import add_dataclass_arguments

    parser.add_argument("--out", required=True, help="output directory")
    add_dataclass_arguments(parser, SyntheticSpec)


def run(ns) -> None:
    from avssl.cli.arguments import dataclass_from

    print(f"synthetic dataset: {generate(ns.out, dataclass_from(ns, SyntheticSpec))}")
