"""``avssl prepare SRC DST``: a dataset re-encoded once into a training-friendly copy, as mp4
files (:mod:`avssl.prepare.mp4`) or a shard store (:mod:`avssl.prepare.shards`).

Its flags come from :class:`~avssl.data.formats.PrepareConfig` (torch-free), so ``avssl prepare
--help`` starts without loading the writers.
"""

from __future__ import annotations

from avssl.data.formats import PREPARE_REPORT, PrepareConfig
from avssl.errors import ConfigError


# ---------------------------------------------------------------------------- avssl prepare
def add_arguments(parser) -> None:
    from avssl.cli.arguments import add_dataclass_arguments

    parser.add_argument(
        "src", help="dataset root: any root avssl reads (AVE, a transfer benchmark, a manifest, a folder, the synthetic set)"
    )
    parser.add_argument("dst", help="output root (created); re-running resumes")
    add_dataclass_arguments(parser, PrepareConfig)
    parser.add_argument("--workers", type=int, default=4, help="parallel processes (default 4)")


def run(ns) -> None:
    from pathlib import Path

    from avssl.cli.arguments import dataclass_from

    cfg = dataclass_from(ns, PrepareConfig)
    if cfg.format == "shards":
        from avssl.prepare.shards import write_store as prepare  # the writers (torch): only once a copy is made
    else:
        from avssl.prepare.mp4 import prepare

    report = prepare(ns.src, ns.dst, cfg, workers=ns.workers)
    if report["prepared"] + report["already_done"] == 0:  # nothing usable: not a success
        raise ConfigError(
            f"prepare: none of the {report['videos']} videos under {ns.src} could be prepared {report['skipped_by_reason']}; "
            f"each one's reason: {Path(ns.dst) / PREPARE_REPORT}"
        )
    print(
        f"prepared {report['prepared']}, already done {report['already_done']}, skipped {len(report['skipped'])} "
        f"{report['skipped_by_reason']}; report: {Path(ns.dst) / PREPARE_REPORT}"
    )
