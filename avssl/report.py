"""``avssl report RUNS_DIR``: the paper's tables from ``results.json`` files, ours beside the paper's.

Collects ``RUNS_DIR/**/<table>/<cell>/results.json`` (as ``avssl grid`` writes them), takes the
fused linear-probe top-1 of the pre-trained encoder (the ``full`` mode when present, else
``cached``), and writes ``report.md`` with one Markdown table per paper table in the paper's layout
(each entry "ours (paper)"), plus ``figure3.png`` (the heat map with row / column means and the
control in the corner, as in the paper) and ``table4.png`` (accuracy vs temporal resolution, with
and without RE). A cell without results is shown as missing ("—"), never filled in; a mean is
shown only when all its entries exist.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from avssl.paper import CELLS, EPOCHS, FRAMES, HOPS, METHODS, PAPER, RATES, TEMPORAL

ORDER = list(TEMPORAL)  # RE, FD, TM, TS
MISSING = "—"


def collect(runs: str | Path) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """``table -> cell -> top-1`` and ``table/cell -> mode used`` from every results.json."""
    values: dict[str, dict[str, float]] = {}
    modes: dict[str, str] = {}
    for path in sorted(Path(runs).rglob("results.json")):
        table, cell = path.parent.parent.name, path.parent.name
        if cell not in CELLS.get(table, {}):
            continue
        metrics = json.loads(path.read_text()).get("metrics", {})
        for mode in ("full", "cached"):
            key = f"pretrained/{mode}/fused"
            if key in metrics:
                values.setdefault(table, {})[cell] = float(metrics[key]["top1"])
                modes[f"{table}/{cell}"] = mode
                break
    return values, modes


def _fmt(value: float | None) -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _entry(ours: dict, table: str, cell: str) -> str:
    paper = PAPER.get(table, {}).get(cell)
    return f"{_fmt(ours.get(table, {}).get(cell))} ({_fmt(paper)})"


def _mean(xs: list[float | None]) -> float | None:
    return None if not xs or any(x is None for x in xs) else sum(xs) / len(xs)


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def figure3_matrix(values: dict) -> list[list[float | None]]:
    """5 x 5: rows = first augmentation, columns = second (diagonal = alone), last column / row the
    means over the 4 entries, bottom-right the control."""
    f3 = values.get("figure3", {})

    def cell(a: str, b: str) -> float | None:
        return f3.get(a.lower() if a == b else f"{a.lower()}_{b.lower()}")

    grid = [[cell(a, b) for b in ORDER] for a in ORDER]
    rows = [[*row, _mean(row)] for row in grid]
    rows.append([*(_mean([grid[i][j] for i in range(4)]) for j in range(4)), f3.get("control")])
    return rows


def markdown(values: dict, modes: dict) -> str:
    lines = ["# Results in the paper's layout", "", "Each entry: ours (paper), linear-probe top-1 % of the fused representation;"]
    lines += [f"{MISSING} = not run / not printed in the paper. Linear modes used: {sorted(set(modes.values())) or 'none'}.", ""]
    lines += ["## Table 1: audio augmentation and its placement (RE applied)", ""]
    lines += _rows(
        ["audio augmentation", "before", "after"],
        [
            [name, _entry(values, "table1", f"{key}_before"), _entry(values, "table1", f"{key}_after")]
            for key, name in (("noise", "coloured noise"), ("pitch", "pitch shift"))
        ],
    )
    lines += ["", "## Table 2: strength alpha", ""]
    lines += _rows(
        ["augmentation", "alpha 0.25", "alpha 0.50", "alpha 0.75"],
        [[TEMPORAL[a], *(_entry(values, "table2", f"{a.lower()}_a{int(x * 100):03d}") for x in (0.25, 0.5, 0.75))] for a in ORDER],
    )
    lines += [
        "",
        f"Control (no temporal augmentation): {_entry(values, 'table2', 'control')}",
        "",
        "## Figure 3: pairs (row first, column second; diagonal alone)",
        "",
    ]
    matrix = figure3_matrix(values)
    lines += _rows(["first \\ second", *ORDER, "mean"], [[label, *(_fmt(v) for v in row)] for label, row in zip([*ORDER, "mean"], matrix)])
    lines += [
        "",
        f"Bottom-right: the control. Paper: control {_fmt(PAPER['figure3']['control'])}, RE alone {_fmt(PAPER['figure3']['re'])} (the paper prints the rest only as a figure).",
        "",
    ]
    lines += ["## Table 3: streams and alignment", ""]
    where = [
        ("control", "no temporal aug."),
        ("audio", "audio only"),
        ("video", "video only"),
        ("both_aligned", "both (+ alignment)"),
        ("both_unaligned", "both (+ no alignment)"),
    ]
    lines += _rows(
        ["location", "RE", "RE + TS"],
        [
            [label, *(_entry(values, "table3", "control" if w == "control" else f"{combo}_{w}") for combo in ("re", "re_ts"))]
            for w, label in where
        ],
    )
    lines += ["", "## Table 4: temporal resolution", ""]
    for title, key, levels in (
        ("frames", "frames", [f"{f:02d}" for f in FRAMES]),
        ("hop size", "hop", [f"{h:03d}" for h in HOPS]),
        ("audio rate (Hz)", "rate", [f"{r:05d}" for r in RATES]),
    ):
        header = [title, *(str(int(level)) for level in levels)]
        rows = [
            [aug, *(_entry(values, "table4", f"{key}{level}_{suffix}") for level in levels)]
            for aug, suffix in (("no augmentation", "none"), ("RE", "re"))
        ]
        delta = []
        for level in levels:
            re, none = values.get("table4", {}).get(f"{key}{level}_re"), values.get("table4", {}).get(f"{key}{level}_none")
            delta.append(_fmt(None if re is None or none is None else re - none))
        lines += [*_rows(header, [*rows, ["delta (ours)", *delta]]), ""]
    lines += ["## Table 5: methods and pre-training epochs", ""]
    lines += _rows(
        ["method", *(str(e) for e in EPOCHS)], [[m, *(_entry(values, "table5", f"{m}_e{e:03d}") for e in EPOCHS)] for m in METHODS]
    )
    return "\n".join(lines) + "\n"


def figures(values: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    paths = []
    matrix = np.array([[np.nan if v is None else v for v in row] for row in figure3_matrix(values)], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(matrix, cmap="viridis")
    labels = [*ORDER, "mean"]
    ax.set_xticks(range(5), labels)
    ax.set_yticks(range(5), labels)
    ax.set_xlabel("second augmentation")
    ax.set_ylabel("first augmentation")
    for i in range(5):
        for j in range(5):
            ax.text(j, i, MISSING if np.isnan(matrix[i, j]) else f"{matrix[i, j]:.1f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(image, ax=ax, label="top-1 %")
    ax.set_title("Figure 3 (bottom-right: no temporal augmentation)")
    fig.tight_layout()
    paths.append(out / "figure3.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, (title, key, levels, fmt) in zip(
        axes, (("frames", "frames", FRAMES, "{:02d}"), ("hop size", "hop", HOPS, "{:03d}"), ("audio rate (Hz)", "rate", RATES, "{:05d}"))
    ):
        x = np.arange(len(levels))
        for suffix, style in (("none", "o"), ("re", "s")):
            ours = [values.get("table4", {}).get(f"{key}{fmt.format(level)}_{suffix}", np.nan) for level in levels]
            paper = [PAPER["table4"].get(f"{key}{fmt.format(level)}_{suffix}", np.nan) for level in levels]
            label = "RE" if suffix == "re" else "no aug."
            ax.plot(x, ours, f"-{style}", label=f"ours, {label}")
            ax.plot(x, paper, f"--{style}", alpha=0.5, label=f"paper, {label}")
        ax.set_xticks(x, [str(level) for level in levels])
        ax.set_title(title)
        ax.set_ylabel("top-1 %")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "table4.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def write_report(runs: str | Path, out: str | Path | None = None) -> Path:
    runs = Path(runs)
    if not runs.is_dir():
        from avssl.errors import ConfigError

        raise ConfigError(f"report: runs directory {str(runs)!r} does not exist")
    out = Path(out) if out else runs / "report"
    out.mkdir(parents=True, exist_ok=True)
    values, modes = collect(runs)
    (out / "report.md").write_text(markdown(values, modes))
    figures(values, out)
    return out / "report.md"
