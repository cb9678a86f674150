"""``avssl export CKPT DIR``: a pre-training checkpoint as a self-describing encoder folder.

    avssl export runs/simclr/version_0/checkpoints/last.ckpt my-encoder [--projectors]
                 [--results runs/linear/results.json ...]

The folder (:mod:`avssl.evaluation.folder`) holds the encoders' weights as safetensors, a
``config.json`` (architecture, input, method and hyper-parameters, training data, avssl and format
versions) and a model card; every evaluation loads it like the checkpoint, offline, and
:meth:`~avssl.evaluation.encoder.PretrainedEncoder.push_to_hub` publishes it. A checkpoint that is
not a pre-training one, non-finite weights or an existing non-empty DIR: one line, nothing written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avssl.errors import ConfigError


def export(checkpoint: str | Path, out: str | Path, *, projectors: bool = False, results: list[str | Path] = ()) -> Path:
    """Write the encoder folder ``out`` from a pre-training ``checkpoint``; returns ``out``."""
    from avssl.evaluation.encoder import load_encoder  # torch: not for --help

    if Path(checkpoint).is_dir():
        raise ConfigError(f"CKPT: {checkpoint} is a folder; export takes the checkpoint file avssl fit saved")
    evaluations = []
    for path in results:
        try:
            evaluations.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--results: {path} is not a readable results.json ({e})") from None
    encoder = load_encoder(checkpoint, field_name="CKPT")  # a pre-training checkpoint, its backbone complete and finite
    return encoder.save_pretrained(out, projectors=projectors, results=evaluations)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="a pre-training checkpoint (avssl fit's last.ckpt)")
    parser.add_argument("out", metavar="DIR", help="the new encoder folder (must not exist, or be empty)")
    parser.add_argument("--projectors", action="store_true", help="include the audio and video projectors (audio-video retrieval)")
    parser.add_argument("--results", nargs="*", default=[], help="results.json files of evaluations, for the model card")


def run(ns: argparse.Namespace) -> Path:
    out = export(ns.checkpoint, ns.out, projectors=ns.projectors, results=ns.results)
    print(f"[avssl] wrote the encoder folder {out} (model.safetensors, config.json, README.md)")
    return out
