"""What a prepared copy is: the settings ``avssl prepare`` re-encodes with, and the report it
leaves in the copy's root (which the decoder reads to find each video's audio sidecar).

Kept apart from :mod:`avssl.data.prepare` (the encoder, which needs torch) so the command line
builds ``avssl prepare --help`` from these fields without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass

from avssl.errors import ConfigError

PREPARE_REPORT = "prepare_report.json"  # in DST: every source's status, output and audio sidecar
FORMATS = ("mp4", "shards")


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
        format: ``mp4`` (a copy of the dataset's tree: H.264 videos with WAV sidecars) or
            ``shards`` (a litdata store of JPEG frames and PCM audio, see avssl.data.store).
        jpeg_quality: JPEG quality of a store's frames (1-100).
    """

    short_side: int = 256
    fps: int = 25
    gop: int = 16
    audio_rate: int = 44100
    crf: int = 23
    bframes: int = 3
    format: str = "mp4"
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"prepare: --format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"prepare: --jpeg-quality must be in 1..100, got {self.jpeg_quality}")
        for name in ("short_side", "fps", "gop", "audio_rate"):
            if getattr(self, name) < 1:
                raise ConfigError(f"prepare: --{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.bframes < 0:
            raise ConfigError(f"prepare: --bframes must be >= 0, got {self.bframes}")

    def settings(self) -> dict:
        """The settings that shape the output of this format (kept in its report: resuming with
        other settings is refused)."""
        if self.format == "shards":
            return {
                "format": "shards",
                "short_side": self.short_side,
                "fps": self.fps,
                "audio_rate": self.audio_rate,
                "jpeg_quality": self.jpeg_quality,
            }
        return {k: getattr(self, k) for k in ("short_side", "fps", "gop", "audio_rate", "crf", "bframes")}


# ---------------------------------------------------------------------------- avssl prepare
def add_arguments(parser) -> None:
    from avssl.arguments import add_dataclass_arguments

    parser.add_argument(
        "src", help="dataset root: any root avssl reads (AVE, a transfer benchmark, a manifest, a folder, the synthetic set)"
    )
    parser.add_argument("dst", help="output root (created); re-running resumes")
    add_dataclass_arguments(parser, PrepareConfig)
    parser.add_argument("--workers", type=int, default=4, help="parallel processes (default 4)")


def run(ns) -> None:
    from pathlib import Path

    from avssl.arguments import dataclass_from

    cfg = dataclass_from(ns, PrepareConfig)
    if cfg.format == "shards":
        from avssl.data.store.write import write_store as prepare  # the writers (torch): only once a copy is made
    else:
        from avssl.data.prepare import prepare

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
