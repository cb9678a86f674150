"""A shard store written by ``avssl prepare --format shards`` (:mod:`avssl.data.store`),
recognised by its ``avssl_store.json``, in a local directory or in object storage (a URI such as
``s3://bucket/prefix``: only a store can be read from there); its records, splits, labels and
classes are the ones of the source it was written from (nothing is decoded, no chunk is opened to
read them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avssl.data.formats import LITDATA_INDEX, STAGE_DIR, STORE_META
from avssl.data.layouts.base import Catalog, Layout, ReadOptions, VideoRecord
from avssl.data.store import remote
from avssl.data.store.meta import StoreMeta
from avssl.errors import ConfigError


class Store(Layout):
    name = "store"
    declares_streams = True  # the streams the store was written with

    def detect(self, root: Path | str) -> bool:
        if remote.is_remote(root):
            return True
        return (root / STORE_META).is_file() or (root / STAGE_DIR).is_dir()  # complete, or being written

    def read(self, root: Path | str, options: ReadOptions) -> Catalog:
        meta = StoreMeta.read(root)
        if meta.split is not None and options.split != meta.split:
            raise ConfigError(f"data.split: the store {root} holds split {meta.split} of its {meta.layout} source, got {options.split}")
        chunks = [c["filename"] for c in meta.chunks]
        if remote.is_remote(meta.root):  # a chunk's header is checked by litdata when it downloads it
            missing, damaged = remote.missing(meta.root, chunks), []
        else:
            missing = [name for name in chunks if not (Path(meta.root) / name).is_file()]
            damaged = [] if missing else damaged_chunks(Path(meta.root), meta.chunks)
        if missing:  # litdata would wait for a missing chunk to appear: refused up front
            raise ConfigError(f"data.root: the store {root} lacks {len(missing)} chunk file(s) its {LITDATA_INDEX} lists: {missing[:5]}")
        if damaged:  # litdata's streaming loader stops on such a chunk: refused up front
            raise ConfigError(
                f"data.root: {len(damaged)} chunk file(s) of the store {root} are damaged (their header does not list the items "
                f"{LITDATA_INDEX} gives them; restore them or write the store again): {damaged[:5]}"
            )
        records = [
            VideoRecord(
                meta.source(r["item"]),  # names the video in reports (not a file of the store)
                r["label"],
                r["video_id"],
                r["split"],
                r["offset"],
                r["length"],
                store=meta.root,
                item=r["item"],
            )
            for r in meta.records
        ]
        return Catalog(f"{self.name} of {meta.layout}", meta.split, records, meta.classes, meta.streams)


def damaged_chunks(root: Path, chunks: tuple[dict, ...]) -> list[str]:
    """The chunk files whose header (litdata's item count, their first 4 bytes) is not the item
    count ``index.json`` lists: one small read per chunk. Damage inside an item is caught when the
    item is read (a counted skip)."""
    damaged = []
    for chunk in chunks:
        header = np.fromfile(root / chunk["filename"], dtype="<u4", count=1)
        if len(header) != 1 or int(header[0]) != int(chunk["chunk_size"]):
            damaged.append(chunk["filename"])
    return damaged
