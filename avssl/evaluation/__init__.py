"""Evaluation of pre-trained encoders: the linear probe (paper section 3.4), kNN, fine-tuning and transfer protocols."""

from avssl.evaluation.encoder import PretrainedEncoder, load_encoder
from avssl.evaluation.features import Features, encoder_datamodule, extract_features
from avssl.evaluation.finetune import FineTune
from avssl.evaluation.probe import LinearProbe
from avssl.evaluation.protocol import linear_evaluation

__all__ = [
    "FineTune",
    "Features",
    "LinearProbe",
    "PretrainedEncoder",
    "encoder_datamodule",
    "extract_features",
    "linear_evaluation",
    "load_encoder",
]
