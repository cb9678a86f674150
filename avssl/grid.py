"""``avssl grid``: run table cells one after another — pre-train, then linear evaluation.

    avssl grid configs/paper/table2 [--out runs/grid] [--epochs N] [--data-root DIR] [--devices N] [--dry-run]

Each cell file ``<table>/<cell>.yaml`` is composed after ``--base`` (``configs/simclr.yaml``) and any
``--extra`` configs; its run lives in ``OUT/<table>/<cell>/`` (checkpoints, logs, ``results.json``).
The evaluation composes ``--linear`` configs with the data settings the encoder was trained on
(frames, clip length, sample rate, spectrogram, dataset: :data:`avssl.paper.SHARED_DATA_KEYS`).
Resumable: a cell with ``results.json`` is skipped; a cell with a checkpoint resumes its
pre-training from ``last.ckpt``. ``--dry-run`` prints the exact commands (for a cluster scheduler).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from avssl.errors import ConfigError
from avssl.paper import cell_of, shared_data


def cell_files(targets: list[str]) -> list[Path]:
    files: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            files += sorted(path.glob("*.yaml"))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"grid: {target} is neither a cell file nor a directory of cells")
    if not files:
        raise ConfigError(f"grid: no cell files (*.yaml) in {targets}")
    return files


def commands(cell: Path, ns: argparse.Namespace) -> tuple[Path, list[str], list[str], dict]:
    """Run directory, fit and test argument lists, and the shared data settings of one cell."""
    table, name = cell_of(cell)
    run = Path(ns.out) / table / name
    ckpt_dir = run / "checkpoints"
    configs = [ns.base, *ns.extra, str(cell)]
    fit = ["fit", *(f"--config={c}" for c in configs)]
    fit += [
        f"--trainer.callbacks.init_args.dirpath={ckpt_dir}",
        f"--trainer.logger.init_args.save_dir={run}",
        "--trainer.logger.init_args.name=pretrain",
    ]
    test = ["test", *(f"--config={c}" for c in ns.linear), f"--config={run / 'shared_data.yaml'}"]
    test += [
        f"--model.encoder_ckpt={ckpt_dir / 'last.ckpt'}",
        f"--model.init_args.output_dir={run}",
        f"--trainer.logger.init_args.save_dir={run}",
    ]
    if ns.epochs:
        fit.append(f"--trainer.max_epochs={ns.epochs}")
    if ns.data_root:
        fit.append(f"--data.root={ns.data_root}")
        test.append(f"--data.root={ns.data_root}")
    if ns.devices:
        fit.append(f"--trainer.devices={ns.devices}")
    if ns.modes:
        test.append(f"--model.init_args.modes=[{ns.modes}]")
    if (ckpt_dir / "last.ckpt").exists():
        fit.append("--ckpt_path=last")
    return run, fit, test, shared_data(configs)


def run_grid(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avssl grid", description="run table cells: pre-train, then linear evaluation")
    parser.add_argument("cells", nargs="+", help="cell files or directories of them (configs/paper/<table>)")
    parser.add_argument("--out", default="runs/grid", help="runs go to OUT/<table>/<cell>")
    parser.add_argument("--base", default="configs/simclr.yaml", help="config every cell is composed after")
    parser.add_argument("--extra", action="append", default=[], help="configs between the base and the cell (e.g. configs/demo.yaml)")
    parser.add_argument("--linear", action="append", default=None, help="evaluation configs (default configs/linear.yaml)")
    parser.add_argument("--epochs", type=int, help="override trainer.max_epochs of every cell")
    parser.add_argument("--data-root", help="override data.root (e.g. the AVE directory)")
    parser.add_argument("--devices", help="override trainer.devices")
    parser.add_argument("--modes", help="linear evaluation modes, comma separated (default: the linear config's)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    ns = parser.parse_args(argv)
    ns.linear = ns.linear or ["configs/linear.yaml"]
    cells = cell_files(ns.cells)
    failed = 0
    for i, cell in enumerate(cells, 1):
        run, fit, test, data = commands(cell, ns)
        label = f"[{i}/{len(cells)}] {run}"
        if ns.dry_run:
            print(f"# {label}")
            print(
                f"mkdir -p {shlex.quote(str(run))} && printf %s {shlex.quote(yaml.safe_dump({'data': data}))} > {shlex.quote(str(run / 'shared_data.yaml'))}"
            )
            print(shlex.join(["avssl", *fit]))
            print(shlex.join(["avssl", *test]))
            continue
        if (run / "results.json").exists():
            print(f"{label}: done, skipped", flush=True)
            continue
        run.mkdir(parents=True, exist_ok=True)
        (run / "shared_data.yaml").write_text(yaml.safe_dump({"data": data}))
        start = time.perf_counter()
        for step, args in (("fit", fit), ("test", test)):
            with open(run / f"{step}.log", "w") as log:
                code = subprocess.run([sys.executable, "-m", "avssl", *args], stdout=log, stderr=subprocess.STDOUT).returncode
            if code != 0:
                print(f"{label}: {step} failed (exit {code}), see {run / f'{step}.log'}", flush=True)
                failed += 1
                break
        else:
            seconds = time.perf_counter() - start
            results = json.loads((run / "results.json").read_text())
            results["grid"] = {"cell": str(cell), "seconds": seconds, "fit": fit, "test": test}
            (run / "results.json").write_text(json.dumps(results, indent=2, default=str))
            print(f"{label}: done in {seconds / 60:.1f} min", flush=True)
    return 1 if failed else 0
