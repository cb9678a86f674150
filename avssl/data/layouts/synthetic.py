"""The embedded synthetic dataset: what it is (:class:`SyntheticSpec`, the parameters that
determine every byte, and the class each label stands for), where it lives by default, and its
layout (a manifest plus the generator's parameters, recognised by the parameters file).

The generator that writes it belongs to the write side (:mod:`avssl.prepare.synthetic`, ``avssl
synth``). The data module builds the set on first use through :func:`build` (and, with
``data.synthetic_format: shards``, a shard store of it), which reaches the generator and the store
writer by their modules' names, as the command table reaches a command's module: reading imports
nothing of the write side.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from avssl.data.formats import MANIFEST, STORE_META, SYNTHETIC_PARAMS, PrepareConfig
from avssl.data.layouts.base import Catalog, Layout, ReadOptions
from avssl.data.layouts.manifest import read_manifest
from avssl.errors import ConfigError
from avssl.utils.cache import cache_dir

GENERATOR = "avssl.prepare.synthetic"  # the module whose generate(root, spec) writes the set
STORE_WRITER = "avssl.prepare.shards"  # the module whose write_store(src, dst, config) writes a store of it

MOTIONS = ("drift_vertical", "drift_horizontal", "drift_diagonal", "expand", "contract", "rotate", "flicker", "pulse")
CONTOURS = ("rise", "fall", "vibrato", "fast_pulses", "slow_pulses", "two_tone", "up_down", "staircase")
# Bumped whenever the generator's output changes, so a cached dataset of an older generator is never
# taken for the current one (it is part of the stored parameters and of the default cache path).
GENERATOR_VERSION = 6


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of a synthetic dataset; together with ``seed`` they determine every byte.

    Args:
        num_classes: classes (each a motion and an audio contour).
        videos_per_class: videos of each class.
        duration: seconds per video.
        fps: frames per second.
        size: frame side in pixels.
        sample_rate: audio sample rate in Hz.
        segment: seconds between redraws of the nuisance factors.
        val_fraction: share of each class's videos in the val split.
        test_fraction: share of each class's videos in the test split.
        seed: generation seed.
    """

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
            raise ConfigError(f"num_classes must be in [2, {len(MOTIONS) * len(CONTOURS)}], got {self.num_classes}")
        if self.videos_per_class < 1:
            raise ConfigError(f"videos_per_class must be >= 1, got {self.videos_per_class}")
        if self.duration <= 0 or self.fps <= 0 or self.size < 16 or self.sample_rate < 4000:
            raise ConfigError(f"invalid synthetic spec: {self}")

    def params(self) -> dict:
        """The stored parameters: the spec and the generator version that wrote the files."""
        return {**asdict(self), "generator": GENERATOR_VERSION}


def class_pattern(label: int) -> tuple[str, str]:
    """The (motion, contour) pair that defines class ``label``."""
    return MOTIONS[label % len(MOTIONS)], CONTOURS[(label + label // len(MOTIONS)) % len(CONTOURS)]


def default_root(spec: SyntheticSpec) -> Path:
    """``$AVSSL_CACHE/synthetic/<hash of spec>`` (``~/.cache/avssl`` by default)."""
    digest = hashlib.sha1(json.dumps(spec.params(), sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir("synthetic", digest)


def store_root(root: Path, short_side: int, audio_rate: int) -> Path:
    """Where the set under ``root`` is kept as a shard store of those settings (beside it: a store
    is written outside the dataset it is written from)."""
    return root.with_name(f"{root.name}-store-{short_side}px-{audio_rate}hz")


def build(root: Path, spec: SyntheticSpec, store: Path | None = None, short_side: int = 0, audio_rate: int = 0) -> None:
    """Write the set of ``spec`` under ``root`` unless it is there (the write side's generator) and,
    given ``store``, a shard store of it there at ``short_side`` and ``audio_rate`` (its writer).
    Processes that build the same set at once take turns (a lock file beside it): the first
    builds, the others find it built."""
    from filelock import FileLock

    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.with_name(f"{root.name}.lock"))):
        if not (root / MANIFEST).exists():
            importlib.import_module(GENERATOR).generate(root, spec)
        if store is not None and not (store / STORE_META).exists():
            config = PrepareConfig(format="shards", short_side=short_side, fps=spec.fps, audio_rate=audio_rate)
            importlib.import_module(STORE_WRITER).write_store(root, store, config, workers=os.cpu_count() or 1)


class Synthetic(Layout):
    name = "synthetic"

    def detect(self, root: Path) -> bool:
        return (root / SYNTHETIC_PARAMS).is_file() and (root / MANIFEST).is_file()

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        return Catalog(self.name, None, read_manifest(root / MANIFEST))
