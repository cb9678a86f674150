from avssl.methods.base import SSLMethod
from avssl.methods.byol import BYOL
from avssl.methods.mocov3 import MoCoV3
from avssl.methods.momentum import MomentumMethod, MomentumTarget, momentum_schedule
from avssl.methods.simclr import SimCLR
from avssl.methods.simsiam import SimSiam
from avssl.methods.supervised import Supervised

__all__ = ["BYOL", "MoCoV3", "MomentumMethod", "MomentumTarget", "SSLMethod", "SimCLR", "SimSiam", "Supervised", "momentum_schedule"]
