"""Transfer evaluations of a pre-trained encoder on the standard benchmarks (``avssl transfer``).

    avssl transfer linear    --ckpt CKPT --root UCF101/ [--split 1|2|3|all] [-- avssl test options]
    avssl transfer finetune  --ckpt CKPT --root HMDB51/ --split all
    avssl transfer retrieval --ckpt CKPT --root HMDB51/ [--split all]

The benchmark is read from ``--root`` in its official layout (:mod:`avssl.data.layouts`);
a single-stream benchmark (UCF101 and HMDB51 video-only, ESC-50 audio-only) is evaluated on the
encoder it has. Protocols:

* ``linear`` (and ``knn``): the linear probe of ``avssl test`` (:mod:`avssl.evaluation.probe`,
  ``configs/linear.yaml`` unless other ``--config`` files follow ``--``), one run per split. On
  ESC-50 the splits are the five folds: ``--split all`` is the 5-fold cross-validation of Piczak
  (2015), as AVID-CMA and XDC report it (mean accuracy over folds).
* ``finetune``: the encoder trained end to end with a classifier (:mod:`avssl.evaluation.finetune`,
  ``configs/finetune.yaml``: AVID-CMA's schedule), one ``avssl test`` run per split;
* ``retrieval``: nearest-neighbour video retrieval with video-level features of ``--clips``
  uniformly spaced clips, and cross-modal retrieval through a checkpoint's projectors
  (:mod:`avssl.evaluation.retrieval`).

``--split all`` runs every official split and reports each metric's mean ± standard deviation
over them. Everything lands in ``--out``: one directory per split and ``transfer.json`` (dataset,
layout, splits, protocol, checkpoint and its sha256, per-split and summary metrics); the summary
table is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
from collections.abc import Sequence
from pathlib import Path

from avssl.data import layouts
from avssl.errors import ConfigError
from avssl.evaluation.protocols import TRANSFER_PROTOCOLS
from avssl.workflows.runner import ENCODER_FLAG, run_avssl

log = logging.getLogger(__name__)


def run_avssl_test(ckpt: str | None, root: str, layout: str, split: int, out: Path, protocol: str, extra: Sequence[str]) -> dict:
    """One ``avssl test`` run (a fresh process, so DDP and logging behave as on the command line)
    on ``split``; returns its ``results.json``."""
    default = "finetune.yaml" if protocol == "finetune" else "linear.yaml"
    configs = [] if any(a in ("--config", "-c") or a.startswith("--config=") for a in extra) else ["--config", default]
    args = [*configs, *extra, f"--data.root={root}", f"--data.layout={layout}", f"--data.split={split}"]
    args += [f"--model.init_args.output_dir={out}", f"--trainer.logger.init_args.save_dir={out}"]
    args.append(f"{ENCODER_FLAG}={ckpt}" if ckpt is not None else "--model.init_args.random_init=true")
    if protocol == "knn":
        args.append("--model.init_args.mode=knn")
    code = run_avssl(["test", *args])
    if code != 0:
        raise ConfigError(f"avssl transfer: the {protocol} run on split {split} failed (exit {code}); its output is above")
    return json.loads((out / "results.json").read_text())


def summarise(per_split: dict[int, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{readout: {metric: {"mean", "std", "n"}}}`` over the splits (std 0 with one split)."""
    keys = dict.fromkeys((r, m) for metrics in per_split.values() for r, values in metrics.items() for m in values)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for readout, metric in keys:
        values = [per_split[s][readout][metric] for s in sorted(per_split) if metric in per_split[s].get(readout, {})]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        out.setdefault(readout, {})[metric] = {"mean": statistics.fmean(values), "std": std, "n": len(values)}
    return out


def _cell(value: dict | None) -> str:
    """A summary entry: ``mean ± std (n=N)``, the value alone for one split, ``-`` when absent."""
    if value is None:
        return "-"
    return f"{value['mean']:.1f}" if value["n"] == 1 else f"{value['mean']:.1f} ± {value['std']:.1f} (n={value['n']})"


def format_summary(summary: dict, *, dataset: str, splits: list[int], protocol: str, sha256: str | None) -> str:
    """Markdown table: one row per readout, ``mean ± std`` of each metric over the splits."""
    metrics = list(dict.fromkeys(m for values in summary.values() for m in values))
    lines = [
        "",
        f"Transfer: {dataset}, {protocol}, split(s) {','.join(map(str, splits))}, encoder sha256 {(sha256 or 'random-init')[:12]}",
        "| readout | " + " | ".join(metrics) + " |",
        "|" + "---|" * (1 + len(metrics)),
    ]
    for readout, values in summary.items():
        lines.append(f"| {readout} | " + " | ".join(_cell(values.get(m)) for m in metrics) + " |")
    lines.append(f"protocol {protocol}: {TRANSFER_PROTOCOLS[protocol.split()[0]]}")
    return "\n".join([*lines, ""])


def transfer_report(runs: str | Path) -> str | None:
    """Markdown: every ``transfer.json`` under ``runs`` gathered into one table per checkpoint
    (rows: dataset, protocol, readout; ``mean ± std (n)`` over the splits); ``None`` without any."""
    found = sorted(Path(runs).rglob("transfer.json"))
    if not found:
        return None
    by_encoder: dict[str, list[dict]] = {}
    for path in found:
        payload = json.loads(path.read_text())
        payload["_path"] = str(path)
        by_encoder.setdefault(payload.get("encoder_sha256") or "random-init", []).append(payload)
    lines = ["# Transfer evaluations", ""]
    for sha, runs_of in by_encoder.items():
        ckpts = sorted({str(p.get("encoder_ckpt")) for p in runs_of})
        lines += [f"## Encoder {sha[:12]} ({', '.join(ckpts)})", ""]
        metrics = list(dict.fromkeys(m for p in runs_of for values in p["summary"].values() for m in values))
        lines.append("| dataset | protocol | splits | readout | " + " | ".join(metrics) + " | source |")
        lines.append("|" + "---|" * (5 + len(metrics)))
        for p in sorted(runs_of, key=lambda p: (p["dataset"], p["protocol"])):
            protocol = p["protocol"] + (f" ({p['probe_mode']})" if p.get("probe_mode") and p["probe_mode"] != p["protocol"] else "")
            for readout, values in p["summary"].items():
                cells = [_cell(values.get(m)) for m in metrics]
                splits = ",".join(map(str, p["splits"]))
                lines.append(f"| {p['dataset']} | {protocol} | {splits} | {readout} | " + " | ".join(cells) + f" | {p['_path']} |")
        lines.append("")
    lines.append("Mean ± sample standard deviation over the official splits (n); one split: its value.")
    return "\n".join(lines) + "\n"


def _linear_metrics(results: dict) -> dict[str, dict[str, float]]:
    """``{readout: {top1, top5}}`` of the pre-trained (else random-init) encoder in a results.json
    (the probe's or the fine-tuning's)."""
    metrics = results["metrics"]
    encoder = "pretrained" if any(k.startswith("pretrained/") for k in metrics) else "random-init"
    return {k.rsplit("/", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{encoder}/")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``avssl transfer``'s options; ``avssl test`` options may follow ``--`` (``ns.extra``)."""
    protocols = "; ".join(f"{k}: {v}" for k, v in TRANSFER_PROTOCOLS.items()).replace("%", "%%")  # argparse formats help with %
    parser.add_argument("protocol", choices=tuple(TRANSFER_PROTOCOLS), help=protocols)
    parser.add_argument("--root", required=True, help="the benchmark in its official layout (UCF101, HMDB51, ESC-50, VGGSound)")
    parser.add_argument("--layout", default="auto", help="auto (recognised from the files) or ucf101, hmdb51, esc50, vggsound")
    parser.add_argument("--split", default="1", help="official split (ESC-50: test fold) or 'all' for mean ± std over every split")
    parser.add_argument("--ckpt", help="pre-training checkpoint (required unless --random-init)")
    parser.add_argument(
        "--random-init", action="store_true", help="linear / knn / finetune: evaluate a randomly initialised encoder instead"
    )
    parser.add_argument("--out", default="runs/transfer", help="output directory")
    parser.add_argument("--clips", type=int, default=10, help="retrieval: uniformly spaced clips per video, features averaged")
    parser.add_argument("--batch-size", type=int, default=16, help="retrieval: videos per forward pass")
    parser.add_argument("--num-workers", type=int, default=4, help="retrieval: decoding processes")


def run(ns: argparse.Namespace) -> Path:
    """Every requested split of ``ns.protocol``; writes ``transfer.json`` and prints the summary."""
    from avssl.evaluation.encoder import load_encoder  # torch: only once a transfer runs
    from avssl.evaluation.retrieval import retrieval

    extra = list(ns.extra)
    if not Path(ns.root).is_dir():
        raise ConfigError(f"--root: directory {ns.root!r} does not exist")
    official = layouts.with_official_splits()
    layout = ns.layout if ns.layout != "auto" else layouts.detect(ns.root).name
    if layout not in official:
        raise ConfigError(f"--root: {ns.root} is not in an official layout avssl reads ({', '.join(official)}); see --layout")
    if ns.split == "all":
        splits = list(range(1, official[layout] + 1))
    elif ns.split.isdigit() and 1 <= int(ns.split) <= official[layout]:
        splits = [int(ns.split)]
    else:
        raise ConfigError(f"--split: {layout} has splits 1..{official[layout]} (or 'all'), got {ns.split!r}")
    if ns.protocol == "retrieval" and not ns.ckpt:
        raise ConfigError("--ckpt: retrieval measures a pre-trained encoder; give its checkpoint")
    if bool(ns.ckpt) == ns.random_init:
        raise ConfigError(
            "--ckpt: give the pre-trained encoder's checkpoint, or --random-init to evaluate a random one on purpose (not both)"
        )
    if extra and ns.protocol == "retrieval":
        raise ConfigError(f"retrieval takes no avssl test options after '--', got {extra}")
    out = Path(ns.out)
    encoder = load_encoder(ns.ckpt, field_name="--ckpt") if ns.ckpt else None
    per_split, details, modes, skipped = {}, {}, set(), {}
    for split in splits:
        split_dir = out / f"split{split}"
        split_dir.mkdir(parents=True, exist_ok=True)
        if ns.protocol == "retrieval":
            result = retrieval(encoder, ns.root, layout, split, clips=ns.clips, batch_size=ns.batch_size, num_workers=ns.num_workers)
            described = {"dataset": layout, "split": split, "protocol": TRANSFER_PROTOCOLS["retrieval"], "clips": ns.clips}
            described |= {"encoder_ckpt": ns.ckpt, "encoder_sha256": encoder.sha256, **result}
            (split_dir / "results.json").write_text(json.dumps(described, indent=2))
            per_split[split] = result["metrics"]
            skipped[split] = result["skipped"]
        else:
            result = run_avssl_test(ns.ckpt, ns.root, layout, split, split_dir, ns.protocol, extra)
            per_split[split] = _linear_metrics(result)
            skipped[split] = result.get("skipped_files", {})
            modes.add(result["mode"])
        details[split] = str(split_dir / "results.json")
    summary = summarise(per_split)
    sha = encoder.sha256 if encoder else None
    protocol = ns.protocol + (f" (probe mode {', '.join(sorted(modes))})" if modes else "")
    payload = {
        "dataset": layout,
        "root": str(ns.root),
        "splits": splits,
        "protocol": ns.protocol,
        "probe_mode": sorted(modes)[0] if len(modes) == 1 else None,
        "protocol_description": TRANSFER_PROTOCOLS[ns.protocol],
        "encoder_ckpt": ns.ckpt,
        "encoder_sha256": sha,
        "per_split": {str(k): v for k, v in per_split.items()},
        "summary": summary,
        "results": {str(k): v for k, v in details.items()},
        "skipped_files": {str(k): v for k, v in skipped.items() if v},  # per split: the files left out, with reasons
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "transfer.json"
    path.write_text(json.dumps(payload, indent=2))
    print(format_summary(summary, dataset=layout, splits=splits, protocol=protocol, sha256=sha))
    print(f"transfer: {path}")
    return path
