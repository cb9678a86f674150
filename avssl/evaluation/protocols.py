"""The names of the evaluation protocols and what each measures (no torch: the command line's
help and the report read them).

* :data:`PROBE_MODES`: how :class:`~avssl.evaluation.probe.LinearProbe` evaluates (``model.mode``).
* :data:`EVALUATION_PROTOCOLS`: the description recorded beside every number of a
  ``results.json`` (the probe's modes and fine-tuning).
* :data:`TRANSFER_PROTOCOLS`: the protocols of ``avssl transfer``.
"""

from __future__ import annotations

PROBE_MODES = ("full", "cached", "knn")
EVALUATION_PROTOCOLS = {
    "full": "paper (section 3.4): linear classifier trained on augmented clips (domain-specific augmentations only), "
    "tested on clips x crops with the mean softmax",
    "cached": "fast mode, not the paper's protocol: linear classifier on features of un-augmented clips cached once",
    "knn": "fast mode, not the paper's protocol: weighted cosine kNN on features of un-augmented clips cached once",
    "finetune": "fine-tuning (AVID-CMA's schedule): encoder and dropout + linear classifier trained end to end on augmented clips, "
    "tested on clips x crops with the mean softmax",
}
TRANSFER_PROTOCOLS = {
    "linear": "linear probe on the frozen encoder (avssl test), top-1 / top-5 % on the test split",
    "knn": "weighted cosine kNN on cached frozen features (avssl test, mode knn), top-1 / top-5 %",
    "finetune": "encoder fine-tuned end to end with a classifier (avssl test --config finetune.yaml), top-1 / top-5 %",
    "retrieval": "test videos query training videos by cosine similarity of frozen video-level features; recall@k %",
}
