from avssl.methods.base import SSLMethod
from avssl.methods.simclr import SimCLR

__all__ = ["SSLMethod", "SimCLR"]
