"""The model card (``README.md``) of an encoder folder, written from its ``config.json``.

It says what the encoder is, how it was trained and on what, the input constants a user must
reproduce (they decide whether features mean anything), how to load it, and the evaluation results
passed to ``avssl export --results``. The licence is left for the publisher to fill in.
"""

from __future__ import annotations

import json
from typing import Any

from avssl.models.backbone import BackboneConfig


def _input_rows(spec: dict[str, Any] | None, settings: dict[str, Any]) -> list[str]:
    if not spec:
        return ["The checkpoint recorded no input settings (written before avssl 0.2): use its training configuration."]
    sg = spec.get("spectrogram") or {}
    augment = settings.get("augment") or {}
    rows = [
        ("frames decoded at a short side of (px, training)", settings.get("short_side")),
        ("crop size (px, training)", augment.get("crop_size")),
        ("frames per clip", spec.get("num_frames")),
        ("clip length (s)", spec.get("clip_seconds")),
        ("audio sample rate (Hz)", spec.get("sample_rate")),
        (
            "spectrogram",
            f"log-mel, n_fft {sg.get('n_fft')}, hop {sg.get('hop_length')}, {sg.get('n_mels')} mel bins, f_min {sg.get('f_min')}, f_max {sg.get('f_max')}",
        ),
        ("pixel mean", spec.get("mean")),
        ("pixel std", spec.get("std")),
    ]
    return ["| input | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def _results_rows(results: list[dict[str, Any]]) -> list[str]:
    if not results:
        return ["No evaluation results were given to `avssl export --results`."]
    lines = ["| evaluation | readout | top-1 % | top-5 % |", "|---|---|---|---|"]
    for result in results:
        name = f"{result.get('dataset', '?')}, {result.get('mode', '?')}"
        for key, metric in sorted((result.get("metrics") or {}).items()):
            if isinstance(metric, dict) and "top1" in metric:
                top5 = metric.get("top5")
                lines.append(f"| {name} | {key} | {metric['top1']:.2f} | {'' if top5 is None else f'{top5:.2f}'} |")
    return lines


def model_card(config: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """Markdown with a Hugging Face metadata header; ``license`` left empty for the publisher."""
    method = config.get("method") or {}
    data = config.get("data") or {}
    training = config.get("training") or {}
    arch = config.get("architecture") or {}
    name = (method.get("class_path") or "an avssl method").rsplit(".", 1)[-1]
    counts = data.get("counts") or {}
    counted = "; ".join(f"{key}: {c.get('videos')} videos, skipped {c.get('skipped') or 'none'}" for key, c in counts.items())
    lines = [
        "---",
        "license:  # fill in: the licence of these weights (and check the training data's)",
        "library_name: avssl",
        "tags: [audio-visual, self-supervised, video, audio, avssl]",
        "---",
        "",
        f"# {name} audio-visual encoder (avssl)",
        "",
        f"A two-stream encoder ({BackboneConfig(**arch).describe()}; fusion {arch.get('fusion')}) "
        f"pre-trained with `{method.get('class_path')}` "
        f"by avssl {config.get('avssl_version')} (encoder folder format {config.get('format_version')}).",
        f"Features: fused {config.get('features', {}).get('fused')}-d, video {config.get('features', {}).get('video')}-d, "
        f"audio {config.get('features', {}).get('audio')}-d.",
        "",
        "## Training",
        "",
        f"- Data: {data.get('name')} ({data.get('split', 'train')} split){'; ' + counted if counted else ''}.",
        f"- Length: {training.get('global_step')} optimiser steps (Lightning epoch counter {training.get('epoch')}).",
        f"- Exported from `{training.get('source')}` (sha256 `{training.get('source_sha256')}`).",
        "- The method's hyper-parameters and the data settings are in `config.json` (`method`, `data.settings`).",
        "",
        "## Input",
        "",
        "Features are only meaningful on inputs prepared exactly like this (avssl applies it when it loads the folder):",
        "",
        *_input_rows(config.get("input"), data.get("settings") or {}),
        "",
        "## Use",
        "",
        "```python",
        "import avssl",
        'encoder = avssl.load_encoder("THIS_FOLDER_OR_HUB_ID")',
        'features = avssl.extract_features(encoder, ["clip.mp4"])  # .fused / .audio / .video',
        "```",
        "",
        "Linear probe: `avssl test --config configs/linear.yaml --model.encoder_ckpt THIS_FOLDER_OR_HUB_ID`.",
        "",
        "## Evaluation",
        "",
        *_results_rows(results),
        "",
        "<!-- avssl config.json, for reference -->",
        "<details><summary>config.json</summary>",
        "",
        "```json",
        json.dumps(config, indent=2),
        "```",
        "</details>",
        "",
    ]
    return "\n".join(lines)
