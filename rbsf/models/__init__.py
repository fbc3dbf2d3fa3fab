"""Networks: SiamFC (tracking) and classification backbones, all from one conv factory."""
from rbsf.models.backbones import build_backbone
from rbsf.models.siamfc import SiamFCNet

__all__ = ["SiamFCNet", "build_backbone"]
