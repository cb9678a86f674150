"""What avssl writes on disk and reads back: file names, format versions and the settings of a
prepared copy.

A leaf without torch: the read side (:mod:`avssl.data`) and the write side (:mod:`avssl.prepare`)
both import it and it imports neither, so a name or a version that both directions must agree on
is typed once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

from avssl.errors import ConfigError

# A dataset root described by a list: ``path,label[,split]`` (the manifest layout's file, also
# written by the synthetic generator and copied, re-pointed, by avssl prepare)
MANIFEST = "manifest.csv"
SYNTHETIC_PARAMS = "synthetic.json"  # the synthetic generator's parameters, beside its manifest

# A prepared copy (avssl prepare)
PREPARE_TMP = ".avssl-prepare-tmp"  # DST's directory for outputs being written
PREPARE_REPORT = "prepare_report.json"  # in DST: every source's status, output and audio sidecar
FORMATS = ("mp4", "shards")
MP4_SHORT_SIDE, STORE_SHORT_SIDE = 256, 128  # default short sides of the two formats


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of a prepared copy.

    Args:
        short_side: short side of the frames in pixels (aspect ratio kept, even sizes); default
            256 for an mp4 copy (evaluation reads the paper's 256-px crops from it), 128 for a
            store (the short side pre-training reads, data.short_side's default: written there, a
            store is the smallest and needs no resize).
        fps: constant output frame rate.
        gop: frames between keyframes.
        audio_rate: sample rate of the mono 16-bit WAV sidecar.
        crf: x264 quality (lower is better).
        bframes: non-reference B-frames between P-frames (0: none).
        format: ``mp4`` (a copy of the dataset's tree: H.264 videos with WAV sidecars) or
            ``shards`` (a litdata store of JPEG frames and PCM audio, see avssl.data.store).
        jpeg_quality: JPEG quality of a store's frames (1-100).
        allow_missing_audio: keep videos without an audio stream (their copy has no audio; read
            them with data.allow_missing_audio, which gives silence); by default they are skipped
            and reported (no_audio_stream).
    """

    short_side: int | None = None
    fps: int = 25
    gop: int = 16
    audio_rate: int = 44100
    crf: int = 23
    bframes: int = 3
    format: str = "mp4"
    jpeg_quality: int = 90
    allow_missing_audio: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"prepare: --format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.short_side is None:
            object.__setattr__(self, "short_side", STORE_SHORT_SIDE if self.format == "shards" else MP4_SHORT_SIDE)
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
        kept = {"allow_missing_audio": True} if self.allow_missing_audio else {}  # absent from the reports of earlier copies
        return {**self._format_settings(), **kept}

    def _format_settings(self) -> dict:
        if self.format == "shards":
            return {
                "format": "shards",
                "short_side": self.short_side,
                "fps": self.fps,
                "audio_rate": self.audio_rate,
                "jpeg_quality": self.jpeg_quality,
            }
        return {k: getattr(self, k) for k in ("short_side", "fps", "gop", "audio_rate", "crf", "bframes")}


# A shard store (avssl prepare --format shards)
STORE_META = "avssl_store.json"  # the store's description, written last: its presence marks a complete store
STAGE_DIR = ".avssl-store-items"  # finished files of a store being written, kept until its chunks are written
LITDATA_INDEX = "index.json"  # litdata's chunk index
STORE_FORMAT = 2  # the layout of avssl_store.json and of the items; bumped when either changes (2: an item per record, by split)
ITEM_KEYS = ("jpeg", "offsets", "audio", "crc")  # one item: JPEG bytes, [F + 1] byte offsets, int16 samples, checksums
