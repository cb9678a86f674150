"""Linear-evaluation results: metrics per encoder / mode / readout, the printed table and
``results.json``.

Every number carries the mode that produced it: keys are ``{encoder}/{mode}/{readout}`` (and
``chance/{readout}``), the table has a mode column and a line saying whether the mode is the
paper's protocol, and ``results.json`` records the mode, the protocol, the encoder's hash and the
data settings of pre-training and of the evaluation.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from avssl.evaluation.multiview import topk_accuracy
from avssl.evaluation.protocols import EVALUATION_PROTOCOLS

log = logging.getLogger(__name__)
READOUTS = ("fused", "audio", "video")


def evaluation_results(
    probs: dict[str, torch.Tensor], labels: torch.Tensor, num_classes: int, *, chance: bool, readouts: tuple[str, ...] = READOUTS
) -> dict[str, dict]:
    """Top-1 / top-5 (%) for every ``{encoder}/{mode}/{readout}`` key, plus chance of each of
    ``readouts`` when asked."""
    results = {key: {"top1": topk_accuracy(p, labels, 1), "top5": topk_accuracy(p, labels, 5)} for key, p in probs.items()}
    if chance:
        for readout in readouts:
            results[f"chance/{readout}"] = {"top1": 100.0 / num_classes, "top5": 100.0 * min(5, num_classes) / num_classes}
    return results


def format_table(results: dict[str, dict[str, float]], mode: str | None = None) -> str:
    """Markdown table: one row per encoder and mode (``chance`` alone), top-1 / top-5 per readout.
    Keys are ``{encoder}/{mode}/{readout}`` or ``chance/{readout}``."""
    rows_keys = list(dict.fromkeys(key.rsplit("/", 1)[0] for key in results))
    header = "| encoder | mode | " + " | ".join(f"{r} top-1 | {r} top-5" for r in READOUTS) + " |"
    rule = "|" + "---|" * (2 + 2 * len(READOUTS))
    rows = []
    for row in rows_keys:
        encoder, _, row_mode = row.partition("/")
        cells = []
        for readout in READOUTS:
            m = results.get(f"{row}/{readout}", {})
            cells += [f"{m['top1']:.1f}" if "top1" in m else "-", f"{m['top5']:.1f}" if "top5" in m else "-"]
        rows.append(f"| {encoder} | {row_mode or '-'} | " + " | ".join(cells) + " |")
    title = "Fine-tuning (test split, %)" if mode == "finetune" else "Linear evaluation (test split, %)"
    lines = ["", title, header, rule, *rows]
    if mode is not None:
        lines.append(f"mode {mode}: {EVALUATION_PROTOCOLS[mode]}")
    return "\n".join([*lines, ""])


def write_results(probe, results: dict, *, num_videos: int) -> Path:
    """``results.json`` in ``probe.hparams.output_dir`` (default: the logger's directory)."""
    trainer = probe.trainer
    out_dir = Path(probe.hparams.output_dir or (trainer.log_dir or "."))
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder = probe.pretrained
    payload = {
        "mode": probe.mode,
        "protocol": EVALUATION_PROTOCOLS[probe.mode],
        "dataset": probe.dataset.get("layout"),
        "split": probe.dataset.get("split"),
        "metrics": results,
        "num_test_videos": num_videos,
        "num_train_videos": probe.num_train_videos,
        "skipped_files": probe.skipped_files,
        "encoder_ckpt": encoder.path if encoder else None,
        "encoder_sha256": encoder.sha256 if encoder else None,
        "encoder_method": encoder.method if encoder else None,
        "architecture": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(probe.architecture).items()},
        "encoder_data": encoder.data if encoder else None,
        "evaluation_data": probe.evaluation_data,
        "probe": {k: v for k, v in probe.hparams.items() if k != "encoder_ckpt"},
        "probe_epochs": trainer.max_epochs if probe.mode != "knn" else 0,
        "world_size": trainer.world_size,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    path = out_dir / "results.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    log.info("wrote %s", path)
    print(f"results: {path}")
    return path
