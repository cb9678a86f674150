"""What a shard store holds, read from its ``avssl_store.json`` and litdata's ``index.json``
without opening a chunk; the store is a local directory or a URI in object storage
(:mod:`~avssl.data.store.remote`).

A store whose description was written by another store format, or that lacks litdata's
``index.json``, is refused with an error naming the file and what was expected.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from avssl.data.formats import LITDATA_INDEX, STORE_FORMAT, STORE_META
from avssl.data.store import remote
from avssl.errors import ConfigError


@dataclass(frozen=True)
class StoreItem:
    """One stored video: ``frames`` JPEG frames of ``height`` x ``width`` at ``fps`` (frame ``k``
    from ``k / fps``), ``duration`` seconds, audio at the store's rate when ``has_audio``."""

    source: str
    frames: int
    height: int
    width: int
    duration: float
    has_audio: bool


def checksums(frames: list[np.ndarray], audio: np.ndarray) -> np.ndarray:
    """uint32 ``[F + 1]``: the CRC-32 of each JPEG frame, then of the audio samples. A reader
    checks the frames it reads and the audio: a damaged chunk then reads as a mismatch instead of
    frames that decode to wrong pixels (libjpeg decodes most damage) or wrong samples."""
    return np.array([zlib.crc32(f.data) for f in frames] + [zlib.crc32(np.ascontiguousarray(audio).data)], np.uint32)


@dataclass(frozen=True)
class StoreMeta:
    """A store's description (``avssl_store.json``)."""

    root: str
    settings: dict
    layout: str  # the layout of the source the store was written from
    split: int | None  # its official split (transfer benchmarks), else None
    classes: list[str] | None
    streams: tuple[str, ...]
    items: tuple[StoreItem, ...]
    records: tuple[dict, ...]  # {"item", "video_id", "label", "split", "offset", "length"}
    chunks: tuple[dict, ...]  # litdata's chunk list (``index.json``): {"filename", "chunk_size", ...}, in item order
    version: str = ""

    @property
    def fps(self) -> int:
        return int(self.settings["fps"])

    @property
    def audio_rate(self) -> int:
        return int(self.settings["audio_rate"])

    @property
    def short_side(self) -> int:
        return int(self.settings["short_side"])

    def split_range(self, split: str) -> range:
        """The items of ``split``'s records: one contiguous range (the writer stores an item per
        record, split by split), which litdata streams as a region of its chunks."""
        items = [r["item"] for r in self.records if r["split"] == split]
        if not items:
            raise ConfigError(f"data.root: the store {self.root} has no records in the {split} split")
        span = range(items[0], items[0] + len(items))
        if items != list(span):
            raise ConfigError(f"{remote.join(self.root, STORE_META)}: the {split} split's items are not one contiguous range of the chunks")
        return span

    def source(self, item: int) -> str:
        """The name of item ``item``'s video in reports: its source file's path under the store's root."""
        return remote.join(self.root, self.items[item].source)

    @staticmethod
    @lru_cache(maxsize=16)
    def cached(root: str) -> StoreMeta:
        """:meth:`read`, once per process and root (a store is never changed once complete)."""
        return StoreMeta.read(root)

    @classmethod
    def read(cls, root: str | Path) -> StoreMeta:
        """The description of the store at ``root`` (a directory or a URI); a :class:`ConfigError`
        names what is wrong."""
        root = str(root)
        where = remote.join(root, STORE_META)
        try:
            path = remote.fetch(root, STORE_META) if remote.is_remote(root) else Path(root) / STORE_META
            raw = json.loads(path.read_text())
        except ConfigError:  # the object could not be fetched: already named
            raise
        except FileNotFoundError:
            raise ConfigError(
                f"data.root: {root} is not a complete shard store (no {STORE_META}; was avssl prepare interrupted?)"
            ) from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"{where}: not readable as a store description ({e})") from None
        if not isinstance(raw, dict) or raw.get("store_format") != STORE_FORMAT:
            found = raw.get("store_format") if isinstance(raw, dict) else None
            raise ConfigError(
                f"{where}: store format {found!r}, this avssl reads format {STORE_FORMAT}; re-run avssl prepare --format shards "
                f"with this version (the store was written by avssl {raw.get('avssl', '?') if isinstance(raw, dict) else '?'})"
            )
        try:
            index = remote.fetch(root, LITDATA_INDEX) if remote.is_remote(root) else Path(root) / LITDATA_INDEX
            chunks = json.loads(index.read_text())["chunks"]
        except (ConfigError, OSError, ValueError, KeyError):
            raise ConfigError(f"data.root: {root} has {STORE_META} but no readable {LITDATA_INDEX} (litdata's chunk index)") from None
        try:
            return cls(
                root=root,
                settings=dict(raw["settings"]),
                layout=str(raw["layout"]),
                split=raw["split"],
                classes=raw["classes"],
                streams=tuple(raw["streams"]),
                items=tuple(StoreItem(**item) for item in raw["items"]),
                records=tuple(raw["records"]),
                chunks=tuple(chunks),
                version=str(raw.get("avssl", "")),
            )
        except (KeyError, TypeError) as e:
            raise ConfigError(f"{where}: field {e} missing or malformed") from None
