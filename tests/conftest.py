"""Shared fixtures: a tiny synthetic dataset built once per session (real mp4 files)."""

from __future__ import annotations

import os

import pytest

from avssl.data.layouts.synthetic import SyntheticSpec
from avssl.prepare.synthetic import generate

TINY = SyntheticSpec(num_classes=4, videos_per_class=6, duration=3.0, size=48, sample_rate=16000, seed=1)

# Settings shared by CLI tests: the demo architecture on the tiny dataset.
TINY_DATA_ARGS = [
    "--data.synthetic.num_classes=4",
    "--data.synthetic.videos_per_class=6",
    "--data.synthetic.duration=3.0",
    "--data.synthetic.size=48",
    "--data.synthetic.seed=1",
    "--data.num_workers=0",
    "--data.batch_size=4",
]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, TINY, progress=False)
    return root


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    """Keep every default cache (synthetic data) inside the test's temporary directory."""
    monkeypatch.setenv("AVSSL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
