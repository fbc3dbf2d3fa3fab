"""ctypes binding of the compiled bit-packed convolution (``_bitconv``), when it was built.

The library is built by ``pip install -e .`` (see ``setup.py``). ``library()`` returns None when
it is missing, and the engine then uses its PyTorch backend.
"""
from __future__ import annotations

import ctypes
import importlib.machinery
import os
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import torch

ISAS: Dict[str, int] = {"scalar": 0, "avx2": 1, "avx512": 2}
_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p


@lru_cache(maxsize=1)
def library() -> Optional[ctypes.CDLL]:
    """The loaded native library, or None when it was not compiled."""
    folder = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_bitconv{suffix}"
        if path.is_file():
            lib = ctypes.CDLL(str(path))
            lib.rbsf_isa_supported.argtypes = [ctypes.c_int]
            lib.rbsf_pack_nhwc.argtypes = ([_PTR] + [_I64] * 6 + [ctypes.c_int, _PTR, _PTR, _PTR]
                                           + [ctypes.c_int] * 2)
            lib.rbsf_bconv.argtypes = ([_PTR] + [_I64] * 5 + [_PTR] + [_I64] * 4
                                       + [_PTR, _PTR, _PTR, ctypes.c_int, ctypes.c_int])
            lib.rbsf_conv_real.argtypes = ([_PTR] + [_I64] * 4 + [_PTR, _PTR] + [_I64] * 3
                                           + [_PTR, ctypes.c_int, ctypes.c_int])
            lib.rbsf_conv_int8.argtypes = ([_PTR] + [_I64] * 4 + [_PTR] * 3 + [_I64] * 3
                                           + [_PTR, ctypes.c_int])
            return lib
    return None


def lanes() -> int:
    """Output channels per weight block in the native weight layout."""
    return library().rbsf_lanes()


def supported_isas() -> list:
    """Instruction sets the native library can use on this CPU (empty when not compiled)."""
    lib = library()
    if lib is None:
        return []
    return [name for name, code in ISAS.items() if lib.rbsf_isa_supported(code)]


def best_isa() -> str:
    """The fastest instruction set available (``avx512`` > ``avx2`` > ``scalar``)."""
    return supported_isas()[-1]


def default_threads() -> int:
    """Threads for the native kernels: ``RBSF_THREADS`` or PyTorch's intra-op thread count."""
    return int(os.environ.get("RBSF_THREADS", torch.get_num_threads()))


def pack_nhwc(x: torch.Tensor, groups: int, pad: int, threads: int, pool: bool = False,
              scale: Optional[torch.Tensor] = None, shift: Optional[torch.Tensor] = None,
              isa: Optional[str] = None) -> torch.Tensor:
    """Signs of a contiguous float32 NHWC tensor packed to [N][H'+2p][W'+2p][G][CW] int64 words.

    Before the sign: optional 3x3 / stride-2 max-pool (H' = (H-3)//2+1), then optional
    per-channel ``v * scale + shift``.
    """
    n, h, w, c = x.shape
    ho, wo = ((h - 3) // 2 + 1, (w - 3) // 2 + 1) if pool else (h, w)
    cw = (c // groups + 63) // 64
    out = torch.empty((n, ho + 2 * pad, wo + 2 * pad, groups, cw), dtype=torch.int64)
    status = library().rbsf_pack_nhwc(x.data_ptr(), n, h, w, c, groups, pad, int(pool),
                                      None if scale is None else scale.data_ptr(),
                                      None if shift is None else shift.data_ptr(),
                                      out.data_ptr(), ISAS[isa or best_isa()], threads)
    _check(status, isa)
    return out


def _check(status: int, isa: Optional[str]) -> None:
    if status != 0:
        raise RuntimeError(f"instruction set {isa!r} is not supported by this CPU; "
                           f"use one of {supported_isas()}")


def bconv(act: torch.Tensor, weights: torch.Tensor, out_channels: int, kernel: int, stride: int,
          kreal: int, scale: torch.Tensor, shift: torch.Tensor, isa: str,
          threads: int) -> torch.Tensor:
    """``scale * (+-1 dot product) + shift`` per output channel, NHWC float32."""
    n, hp, wp, groups, cw = act.shape
    ho, wo = (hp - kernel) // stride + 1, (wp - kernel) // stride + 1
    out = torch.empty((n, ho, wo, out_channels), dtype=torch.float32)
    status = library().rbsf_bconv(act.data_ptr(), n, hp, wp, groups, cw, weights.data_ptr(),
                                  out_channels, kernel, stride, kreal, scale.data_ptr(),
                                  shift.data_ptr(), out.data_ptr(), ISAS[isa], threads)
    _check(status, isa)
    return out


def real_weight(weight: torch.Tensor, bias: torch.Tensor) -> tuple:
    """(O, C, K, K) weights and bias in :func:`conv_real`'s layout: [K][K][C][OCP] and [OCP],
    OCP = O rounded up to 16, zero padded."""
    out_channels = weight.shape[0]
    ocp = -(-out_channels // 16) * 16
    wts = torch.zeros(weight.shape[2:] + weight.shape[1:2] + (ocp,), dtype=torch.float32)
    wts[..., :out_channels] = weight.permute(2, 3, 1, 0)
    padded = torch.zeros(ocp, dtype=torch.float32)
    padded[:out_channels] = bias
    return wts.contiguous(), padded


def conv_real(x: torch.Tensor, wts: torch.Tensor, bias: torch.Tensor, out_channels: int,
              stride: int, isa: str, threads: int) -> torch.Tensor:
    """Real-valued convolution (no padding) of a contiguous float32 NHWC tensor with weights
    and bias from :func:`real_weight`; NHWC float32 out."""
    n, h, w, c = x.shape
    k = wts.shape[0]
    out = torch.empty((n, (h - k) // stride + 1, (w - k) // stride + 1, out_channels),
                      dtype=torch.float32)
    status = library().rbsf_conv_real(x.data_ptr(), n, h, w, c, wts.data_ptr(), bias.data_ptr(),
                                      out_channels, k, stride, out.data_ptr(), ISAS[isa], threads)
    _check(status, isa)
    return out


def int8_supported() -> bool:
    """True when the native library is there and the CPU has AVX-512 VNNI (8-bit conv1)."""
    lib = library()
    return lib is not None and bool(lib.rbsf_int8_supported())


def int8_weight(weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> tuple:
    """Integer-valued (O, C, K, K) weights, per-channel scale and bias in :func:`conv_int8`'s
    layout: int8 [K][G4][OCP/16][16][4] with G4 = ceil(K*C/4) (taps of one kernel row in
    (kx, c) order, zero past K*C), float32 [OCP] scale and bias; OCP = O rounded up to 16."""
    out_channels, channels, k, _ = weight.shape
    ocp, g4 = -(-out_channels // 16) * 16, -(-(k * channels) // 4)
    taps = torch.zeros(k, g4 * 4, ocp, dtype=torch.int8)
    taps[:, :k * channels, :out_channels] = weight.permute(2, 3, 1, 0).reshape(
        k, k * channels, out_channels).to(torch.int8)
    wts = taps.reshape(k, g4, 4, ocp // 16, 16).permute(0, 1, 3, 4, 2).contiguous()
    padded = torch.zeros(2, ocp, dtype=torch.float32)
    padded[0, :out_channels], padded[1, :out_channels] = scale, bias
    return wts, padded[0].clone(), padded[1].clone()


def conv_int8(x: torch.Tensor, wts: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
              out_channels: int, kernel: int, stride: int, threads: int) -> torch.Tensor:
    """8-bit convolution (no padding) of a contiguous float32 NHWC tensor of 0-255 pixels
    (rounded to the nearest integer first) with weights, scale and bias from
    :func:`int8_weight`: ``float(integer sum) * scale + bias``, NHWC float32 out."""
    n, h, w, c = x.shape
    out = torch.empty((n, (h - kernel) // stride + 1, (w - kernel) // stride + 1, out_channels),
                      dtype=torch.float32)
    status = library().rbsf_conv_int8(x.data_ptr(), n, h, w, c, wts.data_ptr(),
                                      scale.data_ptr(), bias.data_ptr(), out_channels, kernel,
                                      stride, out.data_ptr(), threads)
    if status != 0:
        raise RuntimeError("the 8-bit conv1 needs AVX-512 VNNI, which this CPU lacks"
                           if status == -1 else "out of memory in the 8-bit conv1")
    return out
