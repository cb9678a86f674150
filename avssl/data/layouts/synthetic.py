"""The embedded synthetic dataset (:mod:`avssl.data.synthetic` writes it): a manifest plus the
generator's parameters, recognised by the parameters file."""

from __future__ import annotations

from pathlib import Path

from avssl.data.layouts.base import MANIFEST, SYNTHETIC_PARAMS, Catalog, Layout, ReadOptions
from avssl.data.layouts.manifest import read_manifest


class Synthetic(Layout):
    name = "synthetic"

    def detect(self, root: Path) -> bool:
        return (root / SYNTHETIC_PARAMS).is_file() and (root / MANIFEST).is_file()

    def read(self, root: Path, options: ReadOptions) -> Catalog:
        return Catalog(self.name, None, read_manifest(root / MANIFEST))
