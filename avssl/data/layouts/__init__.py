"""The dataset layouts avssl reads, one object per kind of root, in one ordered registry.

``data.layout: auto`` takes the first layout in :data:`LAYOUTS` whose :meth:`~Layout.detect`
recognises the root (a plain folder of videos last); a name picks one. Adding a kind of dataset is
one :class:`Layout` subclass and one entry here.
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.formats import MANIFEST
from avssl.data.layouts.ave import AVE
from avssl.data.layouts.base import SPLITS, STREAMS, VIDEO_EXTENSIONS, Catalog, Layout, ReadOptions, VideoRecord
from avssl.data.layouts.esc50 import ESC50
from avssl.data.layouts.hmdb51 import HMDB51
from avssl.data.layouts.manifest import Folder, Manifest
from avssl.data.layouts.store import Store
from avssl.data.layouts.synthetic import Synthetic
from avssl.data.layouts.ucf101 import UCF101
from avssl.data.layouts.vggsound import VGGSound
from avssl.data.store.remote import is_remote
from avssl.errors import ConfigError

LAYOUTS: tuple[Layout, ...] = (Store(), AVE(), UCF101(), HMDB51(), ESC50(), VGGSound(), Synthetic(), Manifest(), Folder())
BY_NAME = {layout.name: layout for layout in LAYOUTS}

__all__ = [
    "BY_NAME",
    "LAYOUTS",
    "MANIFEST",
    "SPLITS",
    "STREAMS",
    "VIDEO_EXTENSIONS",
    "Catalog",
    "Layout",
    "ReadOptions",
    "VideoRecord",
    "as_root",
    "choose",
    "detect",
    "get",
    "read",
    "with_official_splits",
]


def get(name: str, field_name: str = "data.layout") -> Layout:
    """The layout called ``name``."""
    if name not in BY_NAME:
        raise ConfigError(f"{field_name} must be auto or one of {', '.join(BY_NAME)}, got {name!r}")
    return BY_NAME[name]


def as_root(root: str | Path) -> Path | str:
    """A local root as a :class:`~pathlib.Path`; an object-storage URI stays a string (only a
    shard store is read from there, :mod:`avssl.data.store.remote`)."""
    return str(root) if is_remote(root) else Path(root)


def choose(root: str | Path, layout: str = "auto", field_name: str = "data.layout") -> Layout:
    """The layout ``root`` is read as: ``layout`` by name, or the first that recognises the root
    (a folder of videos when no other does); a URI is a store's."""
    chosen = get(layout, field_name) if layout != "auto" else next(x for x in LAYOUTS if x.detect(as_root(root)))
    if is_remote(root) and chosen.name != Store.name:
        raise ConfigError(f"{field_name}: {root} is in object storage, where avssl reads shard stores only, not a {chosen.name} layout")
    return chosen


def detect(root: str | Path) -> Layout:
    """The first layout that recognises ``root`` (a folder of videos when no other does)."""
    return choose(root)


def read(root: str | Path, layout: str = "auto", options: ReadOptions = ReadOptions()) -> Catalog:
    """The catalog of ``root`` read as ``layout`` (``auto``: detected)."""
    chosen = choose(root, layout)
    chosen.check_split(options.split)
    return chosen.read(as_root(root), options)


def with_official_splits() -> dict[str, int]:
    """``{name: number of official splits}`` of the layouts that have them (the transfer benchmarks)."""
    return {layout.name: layout.num_splits for layout in LAYOUTS if layout.num_splits is not None}
