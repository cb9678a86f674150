"""``avssl report RUNS_DIR``: the paper's tables from ``results.json`` files, ours beside the paper's.

Collects every ``results.json`` under ``RUNS_DIR`` whose path names a paper cell
(``.../<table>/<cell>/...``, as ``avssl grid`` writes them, one per seed and mode), takes the fused
linear-probe top-1 of the pre-trained encoder and writes ``report.md``: for each evaluation mode
found, one Markdown table per paper table in the paper's layout. Only the paper's protocol (mode
``full``) of the fused readout is printed beside the paper's numbers ("ours (paper)"); a fast mode
(``cached``, ``knn``) gets its own, labelled section without them. ``--readout audio|video``
writes the same tables of one stream's own readout (``report_audio.md`` / ``report_video.md``),
where each stream's learning can be told apart; the paper reports no such numbers. With several
seeds an entry is the mean ± standard deviation over seeds and their number; tables with a
control also get the paired difference of every cell from the control over the seeds both ran,
with a 95 % confidence interval. ``figure3.png`` (the heat map with row / column means and the control in the corner, as
in the paper) and ``table4.png`` (accuracy vs temporal resolution, with and without RE) show the
paper's mode when present. A cell without results is shown as missing ("—"), never filled in; a
mean over cells is shown only when all its entries exist.

Every other ``results.json`` (a plain ``avssl test``, one split of ``avssl transfer``) gets a row
of its own in an "Other evaluations" section. ``avssl transfer`` results (``transfer.json``)
found under ``RUNS_DIR`` are gathered into
``transfer.md``: one table per checkpoint (:func:`avssl.workflows.transfer.transfer_report`).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

from avssl.errors import ConfigError
from avssl.evaluation.protocols import EVALUATION_PROTOCOLS, PROBE_MODES
from avssl.paper.cells import BEYOND, CELLS, EPOCHS, FRAMES, HOPS, METHOD_AUGMENTATIONS, METHODS, NOTES, PAPER, RATES, TEMPORAL
from avssl.paper.stats import paired_difference
from avssl.workflows.transfer import transfer_report

ORDER = list(TEMPORAL)  # RE, FD, TM, TS
MISSING = "—"


def _cell_of(path: Path) -> tuple[str, str] | None:
    parts = path.parts
    for i in range(len(parts) - 1):
        if parts[i] in CELLS and parts[i + 1] in CELLS[parts[i]]:
            return parts[i], parts[i + 1]
    return None


def _seed_of(path: Path, payload: dict) -> int:
    match = next((re.fullmatch(r"seed(\d+)", part) for part in path.parts if re.fullmatch(r"seed(\d+)", part)), None)
    if match:
        return int(match.group(1))
    return int((payload.get("encoder_data") or {}).get("seed", 0))


READOUT_NAMES = {
    "fused": "the fused representation",
    "audio": "the audio encoder alone (audio-only readout)",
    "video": "the video encoder alone (video-only readout)",
}


def collect(runs: str | Path, readout: str = "fused") -> dict[str, dict[str, dict[str, dict[int, float]]]]:
    """``mode -> table -> cell -> {seed: top-1}`` of ``readout`` (``fused``, ``audio`` or
    ``video``) from every results.json under ``runs``."""
    values: dict = {}
    for path in sorted(Path(runs).rglob("results.json")):
        where = _cell_of(path.parent)
        if where is None:
            continue
        payload = json.loads(path.read_text())
        metrics = payload.get("metrics", {})
        modes = [payload["mode"]] if "mode" in payload else [m for m in PROBE_MODES if f"pretrained/{m}/fused" in metrics]
        for mode in modes:
            key = f"pretrained/{mode}/{readout}"
            if key in metrics:
                table, cell = where
                values.setdefault(mode, {}).setdefault(table, {}).setdefault(cell, {})[_seed_of(path, payload)] = float(
                    metrics[key]["top1"]
                )
    return values


def other_results(runs: str | Path) -> str | None:
    """Markdown: one row per ``results.json`` under ``runs`` outside the paper's cells (a plain
    ``avssl test`` or ``avssl transfer`` evaluation), the top-1 of each readout of the pre-trained
    and the random-init encoder; ``None`` when there is none."""
    rows = []
    for path in sorted(Path(runs).rglob("results.json")):
        if _cell_of(path.parent) is not None:
            continue
        try:
            payload = json.loads(path.read_text())
            mode, metrics = payload["mode"], payload["metrics"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not an evaluation's results
        top1 = {k: v["top1"] for k, v in metrics.items() if isinstance(v, dict) and "top1" in v}
        cells = [_fmt(top1.get(f"{encoder}/{mode}/{r}")) for encoder in ("pretrained", "random-init") for r in READOUT_NAMES]
        rows.append([str(path.relative_to(runs)), mode, str(payload.get("dataset")), *cells])
    if not rows:
        return None
    header = ["results.json", "mode", "dataset", *(f"{e} {r}" for e in ("pretrained", "random-init") for r in READOUT_NAMES)]
    intro = ["## Other evaluations", "", "Top-1 % of every evaluation outside the paper's cells (avssl test, avssl transfer).", ""]
    return "\n".join([*intro, *_rows(header, rows), ""])


def means(per_seed: dict[str, dict[str, dict[int, float]]]) -> dict[str, dict[str, float]]:
    """``table -> cell -> mean over seeds`` of one mode."""
    return {t: {c: statistics.fmean(s.values()) for c, s in cells.items()} for t, cells in per_seed.items()}


def _fmt(value: float | None) -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _stat(seeds: dict[int, float] | None) -> str:
    if not seeds:
        return MISSING
    if len(seeds) == 1:
        return _fmt(next(iter(seeds.values())))
    return f"{statistics.fmean(seeds.values()):.2f} ± {statistics.stdev(seeds.values()):.2f} (n={len(seeds)})"


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


def markdown(collected: dict, readout: str = "fused") -> str:
    lines = ["# Results in the paper's layout", ""]
    lines += [
        f"Linear-probe top-1 % of {READOUT_NAMES[readout]}. With several seeds: mean ± standard deviation (n seeds).",
        f"{MISSING} = not run / not printed in the paper. Modes found: {', '.join(m for m in PROBE_MODES if m in collected) or 'none'}.",
        "",
    ]
    lines += ["Where the paper's numbers come from when they are not table entries:", ""]
    lines += [f"- {table} / {cell}: {text}" for (table, cell), text in NOTES.items()]
    lines += [""]
    for mode in PROBE_MODES:
        if mode not in collected:
            continue
        with_paper = mode == "full" and readout == "fused"  # the paper reports the fused readout only
        lines += [f"# Mode `{mode}`: {EVALUATION_PROTOCOLS[mode]}", ""]
        lines += ["Each entry: ours (paper)." if with_paper else "Not comparable with the paper's numbers, which are not shown here.", ""]
        lines += _tables(collected[mode], with_paper)
        lines += _paired(collected[mode])
    return "\n".join(lines) + "\n"


def _tables(values: dict, with_paper: bool) -> list[str]:
    def entry(table: str, cell: str) -> str:
        ours = _stat(values.get(table, {}).get(cell))
        return f"{ours} ({_fmt(PAPER.get(table, {}).get(cell))})" if with_paper else ours

    avg = means(values)
    lines = ["## Table 1: audio augmentation and its placement (RE applied)", ""]
    lines += _rows(
        ["audio augmentation", "before", "after"],
        [
            [name, entry("table1", f"{key}_before"), entry("table1", f"{key}_after")]
            for key, name in (("noise", "coloured noise"), ("pitch", "pitch shift"))
        ],
    )
    lines += ["", "## Table 2: strength alpha", ""]
    lines += _rows(
        ["augmentation", "alpha 0.25", "alpha 0.50", "alpha 0.75"],
        [[TEMPORAL[a], *(entry("table2", f"{a.lower()}_a{int(x * 100):03d}") for x in (0.25, 0.5, 0.75))] for a in ORDER],
    )
    lines += [
        "",
        f"Control (no temporal augmentation): {entry('table2', 'control')}",
        "",
        "## Figure 3: pairs (row first, column second; diagonal alone)",
        "",
    ]
    matrix = figure3_matrix(avg)
    lines += _rows(["first \\ second", *ORDER, "mean"], [[label, *(_fmt(v) for v in row)] for label, row in zip([*ORDER, "mean"], matrix)])
    lines += ["", "Means over seeds; bottom-right: the control."]
    if with_paper:
        quoted = ", ".join(f"{cell} {_fmt(v)}" for cell, v in PAPER["figure3"].items())
        lines += [f"Paper (the rest is printed only as a figure): {quoted}."]
    lines += ["", "## Table 3: streams and alignment", ""]
    where = [
        ("control", "no temporal aug."),
        ("audio", "audio only"),
        ("video", "video only"),
        ("both_aligned", "both (+ alignment)"),
        ("both_unaligned", "both (+ no alignment)"),
    ]
    lines += _rows(
        ["location", "RE", "RE + TS"],
        [[label, *(entry("table3", "control" if w == "control" else f"{combo}_{w}") for combo in ("re", "re_ts"))] for w, label in where],
    )
    lines += ["", "## Table 4: temporal resolution", ""]
    for title, key, levels in (
        ("frames", "frames", [f"{f:02d}" for f in FRAMES]),
        ("hop size", "hop", [f"{h:03d}" for h in HOPS]),
        ("audio rate (Hz)", "rate", [f"{r:05d}" for r in RATES]),
    ):
        header = [title, *(str(int(level)) for level in levels)]
        rows = [
            [aug, *(entry("table4", f"{key}{level}_{suffix}") for level in levels)]
            for aug, suffix in (("no augmentation", "none"), ("RE", "re"))
        ]
        delta = []
        for level in levels:
            re_, none = avg.get("table4", {}).get(f"{key}{level}_re"), avg.get("table4", {}).get(f"{key}{level}_none")
            delta.append(_fmt(None if re_ is None or none is None else re_ - none))
        lines += [*_rows(header, [*rows, ["delta (ours)", *delta]]), ""]
    lines += ["## Table 5: methods and pre-training epochs", ""]
    lines += _rows(["method", *(str(e) for e in EPOCHS)], [[m, *(entry("table5", f"{m}_e{e:03d}") for e in EPOCHS)] for m in METHODS])
    lines += ["", "## Beyond the paper: every method without and with RE (configs/paper/methods)", ""]
    lines += _rows(["method", *METHOD_AUGMENTATIONS, "RE - none (paired by seed)"], _method_rows(values.get("methods", {})))
    return [*lines, ""]


def _method_rows(cells: dict[str, dict[int, float]]) -> list[list[str]]:
    """One row per method: its cells' statistics and the paired difference RE - none with its 95 % CI."""
    rows = []
    for method in {**METHODS, **BEYOND}:
        diff = None
        with_re, without = cells.get(f"{method}_re"), cells.get(f"{method}_none")
        if with_re and without:
            diff = paired_difference(with_re, without)
        if diff is None:
            change = MISSING
        else:
            mean, half, n = diff
            change = f"{mean:+.2f}" if math.isnan(half) else f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] (n={n})"
        rows.append([method, *(_stat(cells.get(f"{method}_{aug}")) for aug in METHOD_AUGMENTATIONS), change])
    return rows


def _paired(values: dict) -> list[str]:
    """Paired differences from each table's control over shared seeds (tables with >= 2 seeds)."""
    lines = []
    for table, cells in values.items():
        control = cells.get("control")
        if not control or len(control) < 2:
            continue
        rows = []
        for cell, seeds in cells.items():
            diff = None if cell == "control" else paired_difference(seeds, control)
            if diff is not None:
                mean, half, n = diff
                rows.append([cell, f"{mean:+.2f}", MISSING if math.isnan(half) else f"[{mean - half:+.2f}, {mean + half:+.2f}]", str(n)])
        if rows:
            lines += [f"## {table}: difference from the control (paired by seed)", ""]
            lines += _rows(["cell", "mean difference (points)", "95 % CI", "seeds"], rows)
            lines += [""]
    return lines


def figures(values: dict, out: Path, mode: str = "full") -> list[Path]:
    """``values``: ``table -> cell -> top-1`` of one mode (means over seeds)."""
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
    ax.set_title(f"Figure 3, mode {mode} (bottom-right: no temporal augmentation)")
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
            ax.plot(x, ours, f"-{style}", label=f"ours ({mode}), {label}")
            if mode == "full":  # the paper's numbers only beside the paper's protocol
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


def write_report(runs: str | Path, out: str | Path | None = None, readout: str = "fused") -> Path:
    """Write ``report.md`` (fused readout, with the figures and ``transfer.md``) or, for
    ``readout`` ``audio`` / ``video``, ``report_<readout>.md`` into ``out`` (default
    ``RUNS/report``); returns the Markdown file."""
    if readout not in READOUT_NAMES:
        raise ConfigError(f"report: --readout must be one of {list(READOUT_NAMES)}, got {readout!r}")
    runs = Path(runs)
    if not runs.is_dir():
        raise ConfigError(f"report: runs directory {str(runs)!r} does not exist")
    collected, others = collect(runs, readout), other_results(runs)
    if not collected and others is None and transfer_report(runs) is None:  # nothing to tabulate: say so, write nothing
        raise ConfigError(
            f"report: no results under {runs} (expected results.json files as avssl grid and avssl test write them, or transfer.json)"
        )
    out = Path(out) if out else runs / "report"
    out.mkdir(parents=True, exist_ok=True)
    if readout != "fused":
        path = out / f"report_{readout}.md"
        path.write_text(markdown(collected, readout))
        return path
    (out / "report.md").write_text(markdown(collected) + (f"\n{others}" if others else ""))
    mode = next((m for m in PROBE_MODES if m in collected), "full")
    figures(means(collected.get(mode, {})), out, mode)
    transfer = transfer_report(runs)
    if transfer is not None:
        (out / "transfer.md").write_text(transfer)
        print(f"transfer report: {out / 'transfer.md'}")
    return out / "report.md"


# ---------------------------------------------------------------------------- avssl report
def add_arguments(parser) -> None:
    parser.add_argument("runs", help="directory with <table>/<cell>/results.json (avssl grid --out)")
    parser.add_argument("--out", help="output directory (default RUNS/report)")
    parser.add_argument(
        "--readout",
        choices=list(READOUT_NAMES),
        default="fused",
        help="which linear readout to tabulate (default fused, the paper's; audio / video: report_<readout>.md)",
    )


def run(ns) -> None:
    print(f"report: {write_report(ns.runs, ns.out, ns.readout)}")
