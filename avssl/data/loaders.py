"""How a data module's clips are loaded: the loader settings (:class:`LoaderSpec`, validated once),
the epoch-keyed sampler of a map-style dataset and a loader whose timeout names the files being
decoded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avssl.data.batch import collate
from avssl.errors import ConfigError


@dataclass(frozen=True)
class LoaderSpec:
    """The loader settings of every split of a data module (the ``data.*`` fields of the same names).

    Args:
        batch_size: videos per batch per process.
        num_workers: loader worker processes (decoding only).
        timeout: seconds a worker may take for one batch (with workers).
        prefetch_factor: batches each worker loads ahead (``None``: PyTorch's default).
        seed: the shuffling seed.
    """

    batch_size: int = 128
    num_workers: int = 4
    timeout: float = 300.0
    prefetch_factor: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("batch_size", 1), ("num_workers", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"data.{name} must be >= {low}, got {getattr(self, name)}")
        if not self.timeout > 0:
            raise ConfigError(f"data.timeout must be > 0, got {self.timeout}")
        if self.prefetch_factor is not None and self.prefetch_factor < 1:
            raise ConfigError(f"data.prefetch_factor must be >= 1 (or null: PyTorch's default), got {self.prefetch_factor}")

    def settings(self) -> dict:
        """The DataLoader arguments every loader of these settings shares (map-style or streaming)."""
        workers = self.num_workers
        return dict(
            batch_size=self.batch_size,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=torch.cuda.is_available(),
            timeout=self.timeout if workers > 0 else 0,
            prefetch_factor=self.prefetch_factor if workers > 0 else None,
        )

    def loader(self, dataset: Dataset, *, shuffle: bool, drop_last: bool = False) -> DataLoader:
        """A map-style dataset's loader: keys from an :class:`EpochSampler` (the epoch travels in
        them, so the workers persist across epochs)."""
        return TimeoutNamingLoader(
            dataset,
            sampler=EpochSampler(len(dataset), shuffle=shuffle, seed=self.seed),
            drop_last=drop_last,
            persistent_workers=self.num_workers > 0,
            **self.settings(),
        )


class TimeoutNaming:
    """A DataLoader mixin whose ``timeout`` error names the files the workers were decoding.

    ``DataLoader(timeout=...)`` fails a hung worker with "DataLoader timed out after N seconds";
    this re-raises it as a :class:`RuntimeError` that also lists the dataset's
    ``in_flight_files()`` (:meth:`AVClipDataset.in_flight_files`)."""

    def __iter__(self):
        iterator = super().__iter__()
        dataset = self.dataset
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except RuntimeError as e:
                if "timed out" not in str(e) or not hasattr(dataset, "in_flight_files"):
                    raise
                files = dataset.in_flight_files() or ["(unknown)"]
                raise RuntimeError(
                    f"data loading timed out after {self.timeout:g} s (data.timeout) while decoding: {', '.join(files)}"
                ) from e
            yield batch


class TimeoutNamingLoader(TimeoutNaming, DataLoader):
    """A map-style dataset's DataLoader with :class:`TimeoutNaming`."""


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` keys, shuffled per epoch from ``(seed, epoch)`` when ``shuffle``."""

    def __init__(self, length: int, *, shuffle: bool, seed: int = 0):
        self.length, self.shuffle, self.seed, self.epoch = length, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = range(self.length)
        return iter((self.epoch, i) for i in order)
