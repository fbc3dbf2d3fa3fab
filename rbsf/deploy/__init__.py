"""Deployment: the packed 1-bit model format and its CPU inference engine."""
from rbsf.deploy.engine import BACKENDS, BinaryLayer, binary_conv, default_backend
from rbsf.deploy.packed import (CONV1_MODES, PACKED_FORMAT, PackedSiamFC, is_packed, pack_model,
                                save_packed)

__all__ = ["BACKENDS", "BinaryLayer", "binary_conv", "CONV1_MODES", "default_backend",
           "PACKED_FORMAT", "PackedSiamFC", "is_packed", "pack_model", "save_packed"]
