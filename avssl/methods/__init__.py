from avssl.methods.barlow_twins import BarlowTwins
from avssl.methods.base import SSLMethod
from avssl.methods.byol import BYOL
from avssl.methods.cavmae import CAVMAE
from avssl.methods.cross_modal import CrossModal
from avssl.methods.mocov3 import MoCoV3
from avssl.methods.momentum import MomentumMethod, MomentumTarget, momentum_schedule
from avssl.methods.simclr import SimCLR
from avssl.methods.simsiam import SimSiam
from avssl.methods.supervised import Supervised
from avssl.methods.vicreg import VICReg

__all__ = [
    "BYOL",
    "BarlowTwins",
    "CAVMAE",
    "CrossModal",
    "MoCoV3",
    "MomentumMethod",
    "MomentumTarget",
    "SSLMethod",
    "SimCLR",
    "SimSiam",
    "Supervised",
    "VICReg",
    "momentum_schedule",
]
