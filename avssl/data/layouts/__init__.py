"""The dataset layouts avssl reads, one object per kind of root, in one ordered registry.

``data.layout: auto`` takes the first layout in :data:`LAYOUTS` whose :meth:`~Layout.detect`
recognises the root (a plain folder of videos last); a name picks one. Adding a kind of dataset is
one :class:`Layout` subclass and one entry here.
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.layouts.ave import AVE
from avssl.data.layouts.base import MANIFEST, SPLITS, STREAMS, VIDEO_EXTENSIONS, Catalog, Layout, ReadOptions, VideoRecord
from avssl.data.layouts.esc50 import ESC50
from avssl.data.layouts.hmdb51 import HMDB51
from avssl.data.layouts.manifest import Folder, Manifest
from avssl.data.layouts.store import Store
from avssl.data.layouts.synthetic import Synthetic
from avssl.data.layouts.ucf101 import UCF101
from avssl.data.layouts.vggsound import VGGSound
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


def detect(root: str | Path) -> Layout:
    """The first layout that recognises ``root`` (a folder of videos when no other does)."""
    root = Path(root)
    return next(layout for layout in LAYOUTS if layout.detect(root))


def read(root: str | Path, layout: str = "auto", options: ReadOptions = ReadOptions()) -> Catalog:
    """The catalog of ``root`` read as ``layout`` (``auto``: detected)."""
    chosen = detect(root) if layout == "auto" else get(layout)
    chosen.check_split(options.split)
    return chosen.read(Path(root), options)


def with_official_splits() -> dict[str, int]:
    """``{name: number of official splits}`` of the layouts that have them (the transfer benchmarks)."""
    return {layout.name: layout.num_splits for layout in LAYOUTS if layout.num_splits is not None}
