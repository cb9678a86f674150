"""avssl: self-supervised audiovisual representation learning with spatio-temporal augmentations.

The public API is imported on first use (``avssl.SimCLR`` imports the methods then), so
``import avssl`` and the command line's ``--help`` start without loading torch.
"""

from __future__ import annotations

from avssl.utils.lazy import lazy_exports

__version__ = "0.2.0"

# name -> the module that defines it
_EXPORTS = {
    "AVDataModule": "avssl.data.datamodule",
    "AVTransform": "avssl.augment.pipeline",
    "AugmentConfig": "avssl.augment.pipeline",
    "BYOL": "avssl.methods",
    "BackboneConfig": "avssl.models.backbone",
    "BarlowTwins": "avssl.methods",
    "CAVMAE": "avssl.methods",
    "CrossModal": "avssl.methods",
    "FineTune": "avssl.evaluation",
    "LinearProbe": "avssl.evaluation",
    "MoCoV3": "avssl.methods",
    "PretrainedEncoder": "avssl.evaluation.encoder",
    "SSLMethod": "avssl.methods",
    "SimCLR": "avssl.methods",
    "SimSiam": "avssl.methods",
    "Supervised": "avssl.methods",
    "SyntheticSpec": "avssl.data.layouts.synthetic",
    "TemporalAug": "avssl.augment.temporal",
    "TwoStreamBackbone": "avssl.models.backbone",
    "VICReg": "avssl.methods",
    "barlow_twins_loss": "avssl.losses",
    "byol_loss": "avssl.losses",
    "cross_modal_nce": "avssl.losses",
    "encoder_datamodule": "avssl.evaluation",
    "extract_features": "avssl.evaluation",
    "info_nce": "avssl.losses",
    "linear_evaluation": "avssl.evaluation",
    "masked_reconstruction_loss": "avssl.losses",
    "load_encoder": "avssl.evaluation",
    "moco_loss": "avssl.losses",
    "simsiam_loss": "avssl.losses",
    "vicreg_loss": "avssl.losses",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
