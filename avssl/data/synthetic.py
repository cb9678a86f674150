"""The embedded synthetic audiovisual dataset (SPEC 1): real H.264 + AAC mp4 files.

Each of the ``K`` classes is carried *jointly* by temporal structure in both streams:

* video: the motion pattern of a shape (horizontal / vertical / diagonal oscillation,
  clockwise / counter-clockwise circle, pulsing size, blinking, zig-zag);
* audio: the contour of a tone (rising / falling chirp, vibrato, fast / slow pulses,
  two-tone alternation, up-down sweep, stepped staircase).

Class ``k`` uses motion ``k % 8`` and contour ``(k + k // 8) % 8``, so up to 64 classes have
distinct (motion, contour) pairs.

Everything else is nuisance and is **redrawn every segment** (0.5 s by default): background and
shape colours, shape kind and size, motion centre, amplitude and speed, pixel noise, the base
pitch (two octaves), timbre (harmonic weights), loudness and background noise. A nuisance held
for a whole video would be a fingerprint shared by two clips of that video, and contrastive
learning would match it instead of the class; redrawn over time, the class is the only thing the
two clips of a video have in common.

Generation is deterministic from ``seed``: video ``i`` draws from ``numpy.random.default_rng([seed,
i])``. The dataset is written once under ``root`` with a ``manifest.csv`` (``path,label,split``)
and reused as long as the manifest's recorded parameters match.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

MOTIONS = ("horizontal", "vertical", "circle_cw", "circle_ccw", "diagonal", "pulse_size", "blink", "zigzag")
CONTOURS = ("rise", "fall", "vibrato", "fast_pulses", "slow_pulses", "two_tone", "up_down", "staircase")
MANIFEST = "manifest.csv"
PARAMS = "synthetic.json"


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of a synthetic dataset; together with ``seed`` they determine every byte."""

    num_classes: int = 8
    videos_per_class: int = 24
    duration: float = 4.0
    fps: int = 25
    size: int = 64
    sample_rate: int = 16000
    segment: float = 0.5
    val_fraction: float = 0.25
    test_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(MOTIONS) * len(CONTOURS):
            raise ValueError(f"num_classes must be in [2, {len(MOTIONS) * len(CONTOURS)}], got {self.num_classes}")
        if self.videos_per_class < 1:
            raise ValueError(f"videos_per_class must be >= 1, got {self.videos_per_class}")
        if self.duration <= 0 or self.fps <= 0 or self.size < 16 or self.sample_rate < 4000:
            raise ValueError(f"invalid synthetic spec: {self}")


def class_pattern(label: int) -> tuple[str, str]:
    """The (motion, contour) pair that defines class ``label``."""
    return MOTIONS[label % len(MOTIONS)], CONTOURS[(label + label // len(MOTIONS)) % len(CONTOURS)]


# --------------------------------------------------------------------------- video
def _trajectory(motion: str, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (dx, dy) in [-1, 1], a size factor and a visibility for motion phase ``phase`` (cycles)."""
    ang = 2 * math.pi * phase
    zero, one = np.zeros_like(phase), np.ones_like(phase)
    if motion == "horizontal":
        return np.sin(ang), zero, one, one
    if motion == "vertical":
        return zero, np.sin(ang), one, one
    if motion == "circle_cw":
        return np.cos(ang), np.sin(ang), one, one
    if motion == "circle_ccw":
        return np.cos(ang), -np.sin(ang), one, one
    if motion == "diagonal":
        return np.sin(ang), np.sin(ang), one, one
    if motion == "pulse_size":
        return zero, zero, 1.0 + 0.8 * np.sin(ang), one
    if motion == "blink":
        return zero, zero, one, (np.sin(ang) > 0).astype(np.float64)
    if motion == "zigzag":
        tri = 2 * np.abs(2 * (phase % 1.0) - 1) - 1
        return tri, np.sign(np.sin(4 * ang)) * 0.5, one, one
    raise ValueError(f"unknown motion {motion!r}")


def _render_video(motion: str, spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """uint8 frames ``[F, H, W, 3]``."""
    n_frames = int(round(spec.duration * spec.fps))
    s = spec.size
    t = np.arange(n_frames) / spec.fps
    seg = np.minimum((t / spec.segment).astype(int), int(math.ceil(spec.duration / spec.segment)) - 1)
    n_seg = seg.max() + 1
    # Nuisances, one draw per segment.
    bg = rng.uniform(0, 255, (n_seg, 3))
    fg = rng.uniform(0, 255, (n_seg, 3))
    disc = rng.random(n_seg) < 0.5
    radius = rng.uniform(0.08, 0.16, n_seg) * s
    centre = rng.uniform(0.35, 0.65, (n_seg, 2)) * s
    amp = rng.uniform(0.15, 0.25, n_seg) * s
    speed = rng.uniform(0.8, 1.25, n_seg)  # cycles per second
    noise = rng.uniform(0, 12, n_seg)
    phase0 = rng.random()
    # Phase integrates the (piecewise constant) speed, so motion stays continuous in time.
    phase = phase0 + np.concatenate([[0.0], np.cumsum(speed[seg][:-1] / spec.fps)])
    dx, dy, size_f, visible = _trajectory(motion, phase)
    cx = centre[seg, 0] + amp[seg] * dx
    cy = centre[seg, 1] + amp[seg] * dy
    r = radius[seg] * size_f
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    ddx = xx[None] - cx[:, None, None]
    ddy = yy[None] - cy[:, None, None]
    rr = r[:, None, None]
    inside = np.where(disc[seg][:, None, None], ddx**2 + ddy**2 <= rr**2, (np.abs(ddx) <= rr) & (np.abs(ddy) <= rr))
    inside &= visible[:, None, None] > 0
    frames = np.where(inside[..., None], fg[seg][:, None, None, :], bg[seg][:, None, None, :])
    frames = frames + rng.normal(0, 1, frames.shape) * noise[seg][:, None, None, None]
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
    n_seg = int(math.ceil(spec.duration / spec.segment))
    seg = np.minimum((t / spec.segment).astype(int), n_seg - 1)
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


def generate(root: str | Path, spec: SyntheticSpec = SyntheticSpec(), progress: bool = True) -> Path:
    """Write the dataset under ``root`` (once) and return the manifest path.

    Re-running with the same ``spec`` reuses the files; a different ``spec`` on an existing root
    is an error rather than a silent overwrite.
    """
    root = Path(root)
    manifest = root / MANIFEST
    params_file = root / PARAMS
    if manifest.exists() and params_file.exists():
        stored = json.loads(params_file.read_text())
        if stored != asdict(spec):
            raise ValueError(f"{root} holds a synthetic dataset built with {stored}, not {asdict(spec)}; choose another root or delete it")
        return manifest
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    total = spec.num_classes * spec.videos_per_class
    items = [(label, j) for label in range(spec.num_classes) for j in range(spec.videos_per_class)]
    bar = _progress(items, total, progress)
    for i, (label, j) in enumerate(bar):
        rel = f"videos/{label:02d}_{j:04d}.mp4"
        path = root / rel
        if not path.exists():  # resumable: an interrupted build keeps finished files
            rng = np.random.default_rng([spec.seed, i])
            motion, contour = class_pattern(label)
            write_av_mp4(path, _render_video(motion, spec, rng), _render_audio(contour, spec, rng), spec.fps, spec.sample_rate)
        rows.append((rel, label, _split_of(j, spec.videos_per_class, spec)))
    with open(manifest.with_suffix(".tmp"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)
    params_file.write_text(json.dumps(asdict(spec), indent=2))
    manifest.with_suffix(".tmp").replace(manifest)
    return manifest


def _progress(items, total: int, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with pytorch-lightning
        return items
    return tqdm(items, total=total, desc="synthetic dataset", unit="video")
