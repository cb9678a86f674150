"""avssl: self-supervised audiovisual representation learning with spatio-temporal augmentations."""

__version__ = "0.1.0"

from avssl.augment.pipeline import AugmentConfig, AVTransform  # noqa: E402
from avssl.augment.temporal import TemporalAug  # noqa: E402
from avssl.data.datamodule import AVDataModule  # noqa: E402
from avssl.data.synthetic import SyntheticSpec  # noqa: E402
from avssl.evaluation.linear import LinearProbe  # noqa: E402
from avssl.losses import info_nce  # noqa: E402
from avssl.methods import SimCLR, SSLMethod  # noqa: E402
from avssl.models.backbone import TwoStreamBackbone  # noqa: E402

__all__ = [
    "AVDataModule",
    "AVTransform",
    "AugmentConfig",
    "LinearProbe",
    "SSLMethod",
    "SimCLR",
    "SyntheticSpec",
    "TemporalAug",
    "TwoStreamBackbone",
    "info_nce",
]
