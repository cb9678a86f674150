"""Evaluation of frozen pre-trained encoders: the linear probe (paper section 3.4) and kNN."""

from avssl.evaluation.encoder import PretrainedEncoder, load_encoder
from avssl.evaluation.features import Features, encoder_datamodule, extract_features
from avssl.evaluation.probe import LinearProbe
from avssl.evaluation.protocol import linear_evaluation

__all__ = ["Features", "LinearProbe", "PretrainedEncoder", "encoder_datamodule", "extract_features", "linear_evaluation", "load_encoder"]
