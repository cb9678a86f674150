"""Render the pictures of docs/guides/augmentations.md.

    python docs/figures.py

Runs notebooks/augmentations.ipynb (a small synthetic video, a few seconds on a CPU) and saves
each figure it shows as docs/guides/img/<name>.png instead of displaying it, so the pictures are
exactly what the notebook (executed by the tests) draws.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "guides" / "img"
NAMES = ["re", "fd", "tm", "ts", "tm_aligned", "ts_aligned"]  # the notebook's figures, in order


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    names = iter(NAMES)

    def save() -> None:
        path = OUT / f"{next(names)}.png"
        plt.savefig(path, dpi=48)
        plt.close("all")
        print(path.relative_to(ROOT))

    plt.show = save
    notebook = nbformat.read(ROOT / "notebooks" / "augmentations.ipynb", as_version=4)
    namespace: dict = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "augmentations.ipynb", "exec"), namespace)


if __name__ == "__main__":
    main()
