"""What a prepared copy is: the settings ``avssl prepare`` re-encodes with, and the report it
leaves in the copy's root (which the decoder reads to find each video's audio sidecar).

Kept apart from :mod:`avssl.data.prepare` (the encoder, which needs torch) so the command line
builds ``avssl prepare --help`` from these fields without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

from avssl.errors import ConfigError

PREPARE_REPORT = "prepare_report.json"  # in DST: every source's status, output and audio sidecar


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of a prepared copy.

    Args:
        short_side: short side of the frames in pixels (aspect ratio kept, even sizes).
        fps: constant output frame rate.
        gop: frames between keyframes.
        audio_rate: sample rate of the mono 16-bit WAV sidecar.
        crf: x264 quality (lower is better).
        bframes: non-reference B-frames between P-frames (0: none).
    """

    short_side: int = 256
    fps: int = 25
    gop: int = 16
    audio_rate: int = 44100
    crf: int = 23
    bframes: int = 3

    def __post_init__(self) -> None:
        for name in ("short_side", "fps", "gop", "audio_rate"):
            if getattr(self, name) < 1:
                raise ConfigError(f"prepare: --{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.bframes < 0:
            raise ConfigError(f"prepare: --bframes must be >= 0, got {self.bframes}")


# ---------------------------------------------------------------------------- avssl prepare
def add_arguments(parser) -> None:
    from avssl.arguments import add_dataclass_arguments

    parser.add_argument("src", help="dataset root: AVE download, folder with manifest.csv, or a folder of videos")
    parser.add_argument("dst", help="output root (created); re-running resumes")
    add_dataclass_arguments(parser, PrepareConfig)
    parser.add_argument("--workers", type=int, default=4, help="parallel processes (default 4)")


def run(ns) -> None:
    from pathlib import Path

    from avssl.arguments import dataclass_from
    from avssl.data.prepare import prepare  # the encoder (torch): only once a copy is made

    report = prepare(ns.src, ns.dst, dataclass_from(ns, PrepareConfig), workers=ns.workers)
    if report["prepared"] + report["already_done"] == 0:  # nothing usable: not a success
        raise ConfigError(
            f"prepare: none of the {report['videos']} videos under {ns.src} could be prepared {report['skipped_by_reason']}; "
            f"each one's reason: {Path(ns.dst) / PREPARE_REPORT}"
        )
    print(
        f"prepared {report['prepared']}, already done {report['already_done']}, skipped {len(report['skipped'])} "
        f"{report['skipped_by_reason']}; report: {Path(ns.dst) / PREPARE_REPORT}"
    )
