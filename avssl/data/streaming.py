"""Pre-training clips of a store, streamed by litdata.

The training split's items are one contiguous range of the store (the writer stores them split by
split), given to :class:`litdata.StreamingDataset` as a region of its chunks. litdata then does
what a sampler would: it shuffles the chunks and the items inside them per epoch from the seed,
gives each rank and each worker its own chunks (every video once per epoch; under DDP the ranks
get equal shares and the remainder of the epoch is dropped), reads a worker's chunks in order
(sequential reads, downloaded ahead from object storage) and, through
:class:`litdata.StreamingDataLoader`'s ``state_dict``, which Lightning saves in its checkpoints,
resumes a run stopped mid-epoch at the batch after the last one it trained on, with that epoch's
order.

Each item read is cut into clips by the same :class:`~avssl.data.dataset.AVClipDataset` as a map
of the split (clip starts from ``(seed, epoch, index)``, failures counted and replaced by the next
video), so a streamed clip is the clip of the map-style dataset for the same epoch and video.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from litdata import StreamingDataLoader, StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from avssl.data.dataset import AVClipDataset
from avssl.data.loaders import TimeoutNaming
from avssl.data.store.meta import StoreMeta
from avssl.data.store.remote import chunk_client_options, storage_options

log = logging.getLogger(__name__)


def chunk_region(chunks: list[dict], items: range) -> tuple[list[str], list[tuple[int, int]], list[int]]:
    """The chunks holding ``items`` (litdata's chunk list, in store order), the region of each
    they hold (``(first, end)`` inside the chunk), and for each the number to add to the index
    litdata gives an item of that chunk (numbered over the chosen chunks only) to get its index
    in the store."""
    files, regions, shifts = [], [], []
    begin, chosen = 0, 0
    for chunk in chunks:
        size = int(chunk["chunk_size"])
        first, end = max(items.start, begin), min(items.stop, begin + size)
        if first < end:
            files.append(chunk["filename"])
            regions.append((first - begin, end - begin))
            shifts.append(begin - chosen)
            chosen += size
        begin += size
    return files, regions, shifts


class StoreStream(StreamingDataset):
    """The clips of ``clips`` (a training dataset of one store split), in litdata's streaming
    order.

    Args:
        clips: the split's clips (its records are the store's records of ``split``).
        split: the split streamed.
        seed: litdata's shuffling seed.
    """

    def __init__(self, clips: AVClipDataset, split: str, *, seed: int):
        root = clips.records[0].store
        chunk_client_options()  # an S3-compatible server over http:// (forked workers inherit it)
        super().__init__(
            root, shuffle=True, seed=seed, batch_decode=0, storage_options=storage_options(root)
        )  # one item deserialized per read
        meta = StoreMeta.cached(root)
        items = meta.split_range(split)
        self.subsampled_files, self.region_of_interest, self._shifts = chunk_region(list(meta.chunks), items)
        self.clips = clips
        # the dataset position of each item of the split; one the dataset left out (no audio)
        # takes the next video's place, so every rank still gets full batches
        position = np.full(len(items), -1)
        for p, record in enumerate(clips.records):
            position[record.item - items.start] = p
        kept = np.flatnonzero(position >= 0)
        following = np.searchsorted(kept, np.arange(len(items))) % len(kept)
        self._position = np.where(position >= 0, position, position[kept[following]])
        self._first = items.start

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, ChunkedIndex):  # litdata's own reads (by position)
            return super().__getitem__(index)
        try:
            data = super().__getitem__(index)
        except Exception as e:  # a damaged chunk: litdata raises its own and the OS's errors
            log.warning("store chunk %s not readable (%s: %s): its videos are read one by one", index.chunk_index, type(e).__name__, e)
            data = None  # the dataset reads the item itself, and counts it if it fails there too
        offset = index.index + self._shifts[index.chunk_index] - self._first
        position = int(self._position[offset])
        same = self.clips.records[position].item == self._first + offset
        return self.clips.sample(self.epoch, position, data if same else None)

    @property
    def epoch(self) -> int:
        """The epoch as Lightning counts it (from 0; litdata counts from 1): the clip starts of a
        video in an epoch are the ones media files give it in that epoch."""
        return self.current_epoch - 1

    def in_flight_files(self) -> list[str]:
        """Files the workers are decoding right now."""
        return self.clips.in_flight_files()


class StoreLoader(TimeoutNaming, StreamingDataLoader):
    """litdata's loader of a :class:`StoreStream` (its position in the epoch is its
    ``state_dict``, saved and restored by Lightning), whose timeout names the files decoding."""

    def __iter__(self):
        # Lightning ends an epoch after len(loader) batches, without drawing the loader's
        # StopIteration; litdata keeps a restored position until its iteration is exhausted, so
        # the epoch after a resumed one would be that position again (an empty epoch). A
        # restored epoch whose batches have all been yielded is over: the next one starts afresh.
        if self.restore and self._num_samples_yielded_streaming >= len(self) * self.batch_size:
            self.restore = False
        yield from super().__iter__()
