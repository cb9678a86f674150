"""``avssl grid``: run table cells one after another — pre-train, then linear evaluation.

    avssl grid configs/paper/table2 [--seeds 0,1,2] [--modes full] [--out runs/grid] [--epochs N]
               [--data-root DIR] [--devices N] [--dry-run]

Each cell file ``<table>/<cell>.yaml`` is composed after ``--base`` (``configs/simclr.yaml``) and any
``--extra`` configs. Every seed of every cell is one run in ``OUT/<table>/<cell>/seed<S>/``:
pre-training (``seed_everything`` and ``data.seed`` = S; checkpoints, logs, ``fit.log``), then one
linear evaluation per mode in ``linear_<mode>/`` (``results.json``, ``test.log``). The evaluation
composes the ``--linear`` configs; the encoder's input settings and dataset come from its
checkpoint. Resumable: a finished pre-training is not repeated, an interrupted one resumes from
``last.ckpt``, an evaluation with ``results.json`` is skipped. ``--dry-run`` prints the exact
commands (for a cluster scheduler). ``avssl report OUT`` aggregates the results.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from avssl.cli.bundled import resolve
from avssl.errors import ConfigError
from avssl.evaluation.protocols import PROBE_MODES
from avssl.workflows.runner import ENCODER_FLAG, run_avssl


def _configs(values: list[str], flag: str) -> list[str]:
    """The configs of a repeated or comma-separated flag, each checked before any run starts (a
    file, or a bundled config's name)."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in names:
        try:
            resolve(name)
        except ConfigError:
            raise ConfigError(
                f"grid: {flag} {name}: no such file, and no bundled config of that name (`avssl configs` lists them)"
            ) from None
    return names


def cell_files(targets: list[str]) -> list[Path]:
    files: list[Path] = []
    for target in targets:
        try:
            path = resolve(target)  # a path, else a bundled one (configs/paper/table2 works anywhere)
        except ConfigError:
            raise ConfigError(f"grid: {target} is neither a cell file nor a directory of cells") from None
        files += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise ConfigError(f"grid: no cell files (*.yaml) in {targets}")
    return files


@dataclass
class Run:
    """One seed of one cell: its directory and the commands that pre-train and evaluate it."""

    directory: Path
    fit: list[str]
    tests: dict[str, list[str]]  # mode -> arguments

    @property
    def checkpoint(self) -> Path:
        return self.directory / "checkpoints" / "last.ckpt"

    def fit_finished(self) -> bool:
        from avssl.reliability.summary import SUMMARY  # imports Lightning: only when a grid runs

        summary = self.directory / "checkpoints" / SUMMARY
        return summary.exists() and json.loads(summary.read_text()).get("status") == "finished"

    def results(self, mode: str) -> Path:
        return self.directory / f"linear_{mode}" / "results.json"


def cell_of(path: str | Path) -> tuple[str, str]:
    """``(table, cell)`` of a cell file or of a run directory ``.../<table>/<cell>``."""
    path = Path(path)
    return path.parent.name, path.stem if path.suffix else path.name


def plan(cell: Path, seed: int, ns: argparse.Namespace) -> Run:
    table, name = cell_of(cell)
    run = Path(ns.out) / table / name / f"seed{seed}"
    fit = ["fit", *(f"--config={c}" for c in (ns.base, *ns.extra, str(cell)))]
    fit += [
        f"--seed_everything={seed}",
        f"--data.seed={seed}",
        f"--trainer.callbacks.init_args.dirpath={run / 'checkpoints'}",
        f"--trainer.logger.init_args.save_dir={run}",
        "--trainer.logger.init_args.name=pretrain",
    ]
    if ns.epochs:
        fit.append(f"--trainer.max_epochs={ns.epochs}")
    if ns.data_root:
        fit.append(f"--data.root={ns.data_root}")
    if ns.devices:
        fit.append(f"--trainer.devices={ns.devices}")
    if (run / "checkpoints" / "last.ckpt").exists():
        fit.append("--ckpt_path=last")
    tests = {}
    for mode in ns.modes:
        out = run / f"linear_{mode}"
        tests[mode] = [
            "test",
            *(f"--config={c}" for c in ns.linear),
            f"--seed_everything={seed}",
            f"{ENCODER_FLAG}={run / 'checkpoints' / 'last.ckpt'}",
            f"--model.init_args.mode={mode}",
            f"--model.init_args.seed={seed}",
            f"--model.init_args.output_dir={out}",
            f"--trainer.logger.init_args.save_dir={out}",
        ]
        if ns.devices:
            tests[mode].append(f"--trainer.devices={ns.devices}")
    return Run(run, fit, tests)


def _parse_list(text: str, kind, name: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"grid: --{name} takes a comma-separated list, got {text!r}") from None
    if not values:
        raise ConfigError(f"grid: --{name} is empty")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cells", nargs="+", help="cell files or directories of them (configs/paper/<table>)")
    parser.add_argument("--out", default="runs/grid", help="runs go to OUT/<table>/<cell>/seed<S>")
    parser.add_argument("--base", default="configs/simclr.yaml", help="config every cell is composed after")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        help="configs between the base and the cell (e.g. configs/demo.yaml); repeat or separate with commas",
    )
    parser.add_argument(
        "--linear", action="append", default=None, help="evaluation configs (default configs/linear.yaml); repeat or separate with commas"
    )
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; every cell runs once per seed (default 0)")
    parser.add_argument("--modes", default="full", help="linear evaluation modes, comma separated (default full: the paper's protocol)")
    parser.add_argument("--epochs", type=int, help="override trainer.max_epochs of every cell's pre-training")
    parser.add_argument("--data-root", help="override data.root (e.g. the AVE directory)")
    parser.add_argument("--devices", help="override trainer.devices")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")


def run(ns: argparse.Namespace) -> int:
    ns.linear = _configs(ns.linear or ["configs/linear.yaml"], "--linear")
    ns.extra = _configs(ns.extra, "--extra")
    _configs([ns.base], "--base")
    ns.seeds = _parse_list(ns.seeds, int, "seeds")
    ns.modes = _parse_list(ns.modes, str, "modes")
    unknown = [m for m in ns.modes if m not in PROBE_MODES]
    if unknown:
        raise ConfigError(f"grid: --modes must be among {list(PROBE_MODES)}, got {unknown}")
    planned = [plan(cell, seed, ns) for cell in cell_files(ns.cells) for seed in ns.seeds]
    failed = 0
    for i, run in enumerate(planned, 1):
        label = f"[{i}/{len(planned)}] {run.directory}"
        if ns.dry_run:
            print(f"# {label}")
            for args in (run.fit, *run.tests.values()):
                print(shlex.join(["avssl", *args]))
            continue
        todo = [mode for mode in ns.modes if not run.results(mode).exists()]
        if not todo:
            print(f"{label}: done, skipped", flush=True)
            continue
        run.directory.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        steps = [] if run.fit_finished() else [("fit", run.fit, run.directory / "fit.log")]
        steps += [(f"test ({mode})", run.tests[mode], run.directory / f"linear_{mode}" / "test.log") for mode in todo]
        for step, args, log_path in steps:
            code = run_avssl(args, log_file=log_path)
            if code != 0:
                print(f"{label}: {step} failed (exit {code}), see {log_path}", flush=True)
                failed += 1
                break
        else:
            seconds = time.perf_counter() - start
            for mode in todo:
                results = json.loads(run.results(mode).read_text())
                results["grid"] = {"seconds": seconds, "fit": run.fit, "test": run.tests[mode]}
                run.results(mode).write_text(json.dumps(results, indent=2, default=str))
            print(f"{label}: done in {seconds / 60:.1f} min", flush=True)
    return 1 if failed else 0
