"""Evaluation of frozen pre-trained encoders: the linear probe (paper section 3.4) and kNN."""

from avssl.evaluation.encoder import PretrainedEncoder, load_encoder
from avssl.evaluation.probe import LinearProbe
from avssl.evaluation.protocol import linear_evaluation

__all__ = ["LinearProbe", "PretrainedEncoder", "linear_evaluation", "load_encoder"]
