"""The configuration files that ship inside the package (``avssl/configs``).

A ``--config NAME`` that is not a file is looked up among them, so the commands of the README run
from any directory after ``pip install avssl``: ``simclr.yaml``, ``simclr``, ``configs/simclr.yaml``
and ``paper/table2/control.yaml`` all name bundled files. A path that exists always wins.
``avssl configs`` lists them and ``avssl configs NAME`` prints one (to copy and edit).
"""

from __future__ import annotations

from pathlib import Path

from avssl.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
PRETRAIN_BASE = CONFIG_DIR / "base.yaml"  # read by `avssl fit` before any --config


def bundled_configs() -> list[str]:
    """Names of the bundled configs (paths relative to the config directory)."""
    return sorted(p.relative_to(CONFIG_DIR).as_posix() for p in CONFIG_DIR.rglob("*.yaml"))


def resolve(name: str | Path) -> Path:
    """``name`` if it exists, else the bundled config or config directory it names (a leading
    ``configs/`` and the ``.yaml`` suffix are optional). Raises :class:`ConfigError`."""
    path = Path(name)
    if path.exists():
        return path
    rel = path.as_posix()
    rel = rel[len("configs/") :] if rel.startswith("configs/") else rel
    for candidate in (CONFIG_DIR / rel, CONFIG_DIR / f"{rel}.yaml"):
        if rel and candidate.exists():
            return candidate
    raise ConfigError(f"--config {name}: no such file, and no bundled config of that name (`avssl configs` lists them)")


def describe(name: str) -> str:
    """The first comment line of a bundled config (its one-line description)."""
    for line in (CONFIG_DIR / name).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


# ---------------------------------------------------------------------------- avssl configs
def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="a bundled config to print (e.g. simclr, paper/table2/control)")


def run(ns) -> None:
    """List the bundled configs (the paper's cells by directory), or print one."""
    import sys

    if ns.name is None:  # the paper's cells by directory (each file: avssl configs paper/<table>/<cell>)
        rows, cells = [], {}
        for name in bundled_configs():
            if name.startswith("paper/"):
                cells.setdefault(name.rsplit("/", 1)[0], []).append(name)
            else:
                rows.append((name, describe(name)))
        rows += [(f"{d}/", f"{len(names)} cells of the paper's {d.split('/')[1]}, for avssl grid") for d, names in cells.items()]
        width = max(len(n) for n, _ in rows)
        print("\n".join(f"{n:<{width}}  {text}" for n, text in rows))
        return
    path = resolve(ns.name)
    if not path.is_file():
        raise ConfigError(f"avssl configs: {ns.name} is a directory of configs; name one of its files")
    sys.stdout.write(path.read_text())
