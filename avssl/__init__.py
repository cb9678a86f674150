"""avssl: self-supervised audiovisual representation learning with spatio-temporal augmentations."""

__version__ = "0.2.0"

from avssl.augment.pipeline import AugmentConfig, AVTransform  # noqa: E402
from avssl.augment.temporal import TemporalAug  # noqa: E402
from avssl.data.datamodule import AVDataModule  # noqa: E402
from avssl.data.synthetic import SyntheticSpec  # noqa: E402
from avssl.evaluation import FineTune, LinearProbe, encoder_datamodule, extract_features, linear_evaluation, load_encoder  # noqa: E402
from avssl.losses import byol_loss, cross_modal_nce, info_nce, moco_loss, simsiam_loss  # noqa: E402
from avssl.methods import BYOL, MoCoV3, SimCLR, SimSiam, SSLMethod, Supervised  # noqa: E402
from avssl.models.backbone import BackboneConfig, TwoStreamBackbone  # noqa: E402

__all__ = [
    "BackboneConfig",
    "BYOL",
    "MoCoV3",
    "SimSiam",
    "Supervised",
    "byol_loss",
    "cross_modal_nce",
    "encoder_datamodule",
    "extract_features",
    "moco_loss",
    "simsiam_loss",
    "AVDataModule",
    "AVTransform",
    "AugmentConfig",
    "FineTune",
    "LinearProbe",
    "SSLMethod",
    "SimCLR",
    "SyntheticSpec",
    "TemporalAug",
    "TwoStreamBackbone",
    "info_nce",
    "linear_evaluation",
    "load_encoder",
]
