"""Evaluation of pre-trained encoders: the linear probe (paper section 3.4), kNN, fine-tuning and retrieval."""

from __future__ import annotations

from avssl.utils.lazy import lazy_exports

_EXPORTS = {
    "EncoderEvaluation": "avssl.evaluation.base",
    "FineTune": "avssl.evaluation.finetune",
    "Features": "avssl.evaluation.features",
    "LinearProbe": "avssl.evaluation.probe",
    "PretrainedEncoder": "avssl.evaluation.encoder",
    "encoder_datamodule": "avssl.evaluation.features",
    "extract_features": "avssl.evaluation.features",
    "linear_evaluation": "avssl.workflows.linear",
    "load_encoder": "avssl.evaluation.encoder",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
