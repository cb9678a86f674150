"""benchmarks/gpu_check.py, the prepared device check, runs on CPU with tiny settings so it never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_cpu_and_writes_its_report(tmp_path):
    out = tmp_path / "gpu_check.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--steps", "2", "--warmup", "1", "--tiny"]
    command += [
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--videos",
        "4",
        "--variants",
        "eager,channels_last,store,media,vit,cavmae",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| variant | syncs/step | data wait |" in done.stdout
    report = json.loads(out.read_text())
    assert [v["variant"] for v in report["variants"]] == ["eager", "channels_last", "store", "media", "vit", "cavmae"]
    assert [v["device_decoded_frames"] for v in report["variants"]][1:4] == [0, 2 * 2 * 8, 2 * 2 * 8]  # batch 2 x 2 clips x 8 frames
    assert [v["batch_size"] for v in report["variants"]][4:] == [1, 1]  # the transformers: a quarter of the batch
    for variant in report["variants"]:
        assert variant["steps"] == 2 and variant["ms_per_step"]["forward + backward"] > 0 and variant["clips_per_s"] > 0
    assert report["augment"]["exit"] == 0
