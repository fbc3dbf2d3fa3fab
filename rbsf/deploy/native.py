"""ctypes binding of the compiled engine (``_bitconv``, see ``bitconv.c``), when it was built.

The library is built by ``pip install -e .`` (see ``setup.py``). ``library()`` returns None when
it is missing, and the engine then uses its PyTorch backend. ``RBSF_NATIVE_LIBRARY`` names
another build of it (a sanitizer build, say) to load instead.

Instruction sets are levels, ``ISAS``: ``scalar`` < ``avx2`` < ``avx512`` (F/BW/DQ/VL) <
``vnni`` (+ VNNI, VPOPCNTDQ) < ``bf16`` (+ AVX512_BF16). ``RBSF_MAX_ISA`` (one of them), read
when the library loads, caps every kernel to that level and the features it implies, so a run
stands for an older CPU. Each call below checks its tensors (dtype, contiguity, shapes) before
C runs, takes its output sizes from the C library's ``rbsf_out_size`` (the one place they are
computed) and passes them to C, which checks them again and refuses a mismatch.
"""
from __future__ import annotations

import ctypes
import importlib.machinery
import os
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import torch

from rbsf.errors import RBSFError

ISAS: Dict[str, int] = {"scalar": 0, "avx2": 1, "avx512": 2, "vnni": 3, "bf16": 4}
_STATUS = {-1: "unsupported", -2: "out of memory", -3: "bad arguments"}
_I64, _PTR, _INT = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int


class EngineError(RBSFError, ValueError):
    """Input the native engine cannot take (shape, dtype, size, instruction set)."""


def _signatures(lib: ctypes.CDLL) -> None:
    lib.rbsf_isa_supported.argtypes = [_INT]
    lib.rbsf_set_max_isa.argtypes = [_INT]
    lib.rbsf_out_size.argtypes = [_I64] * 4
    lib.rbsf_out_size.restype = _I64
    lib.rbsf_pack_nhwc.argtypes = ([_PTR] + [_I64] * 6 + [_INT, _PTR, _PTR, _PTR, _I64, _I64]
                                   + [_INT] * 2)
    lib.rbsf_bconv.argtypes = ([_PTR] + [_I64] * 5 + [_PTR] + [_I64] * 4
                               + [_PTR, _PTR, _PTR, _I64, _I64, _INT, _INT])
    lib.rbsf_conv_real.argtypes = ([_PTR] + [_I64] * 4 + [_PTR, _PTR] + [_I64] * 3
                                   + [_PTR, _I64, _I64, _INT, _INT])
    lib.rbsf_conv_int8.argtypes = ([_PTR, _INT] + [_I64] * 4 + [_PTR] * 3 + [_I64] * 3
                                   + [_PTR, _I64, _I64, _INT, _INT])
    lib.rbsf_xcorr.argtypes = ([_PTR] + [_I64] * 3 + [_PTR] + [_I64] * 3
                               + [ctypes.c_float, _PTR, _I64, _I64, _INT, _INT])


def max_isa_from_environment() -> Optional[str]:
    """The cap named by ``RBSF_MAX_ISA`` (None: no cap); ``EngineError`` for an unknown name."""
    name = os.environ.get("RBSF_MAX_ISA", "").strip().lower()
    if not name:
        return None
    if name not in ISAS:
        raise EngineError(f"RBSF_MAX_ISA={name!r} is not an instruction set; use one of "
                          f"{', '.join(ISAS)} or leave it unset")
    return name


@lru_cache(maxsize=1)
def library() -> Optional[ctypes.CDLL]:
    """The loaded native library (capped by ``RBSF_MAX_ISA``), or None when not compiled."""
    cap = max_isa_from_environment()
    override = os.environ.get("RBSF_NATIVE_LIBRARY")
    folder = Path(__file__).resolve().parent
    paths = [Path(override)] if override else [
        folder / f"_bitconv{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    for path in paths:
        if path.is_file():
            lib = ctypes.CDLL(str(path))
            _signatures(lib)
            if cap is not None:
                lib.rbsf_set_max_isa(ISAS[cap])
            return lib
    return None


def lanes() -> int:
    """Output channels per weight block in the native weight layout."""
    return library().rbsf_lanes()


def supported_isas() -> list:
    """Levels the native library can use on this CPU under the cap (empty when not compiled)."""
    lib = library()
    if lib is None:
        return []
    return [name for name, code in ISAS.items() if lib.rbsf_isa_supported(code)]


def best_isa() -> str:
    """The highest supported level (see ``ISAS``)."""
    return supported_isas()[-1]


def default_threads() -> int:
    """Threads for the native kernels: ``RBSF_THREADS`` or PyTorch's intra-op thread count."""
    return int(os.environ.get("RBSF_THREADS", torch.get_num_threads()))


def out_size(n: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """Output length of a ``kernel`` / ``stride`` window over ``n`` inputs padded by ``pad``
    (the C library's rule); ``EngineError`` when the window does not fit."""
    size = library().rbsf_out_size(n, kernel, stride, pad)
    if size < 1:
        raise EngineError(f"an input of {n} (padding {pad}) is too small for a window of "
                          f"{kernel} with stride {stride}; give a larger image")
    return size


def _tensor(t: torch.Tensor, name: str, dtype: torch.dtype, ndim: Optional[int] = None,
            numel: Optional[int] = None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.dtype != dtype or t.device.type != "cpu":
        raise EngineError(f"{name} must be a {dtype} CPU tensor, got "
                          f"{getattr(t, 'dtype', type(t).__name__)}")
    if not t.is_contiguous():
        raise EngineError(f"{name} must be contiguous (call .contiguous())")
    if ndim is not None and t.dim() != ndim:
        raise EngineError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    if numel is not None and t.numel() != numel:
        raise EngineError(f"{name} must hold {numel} values, got {t.numel()}")
    return t


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise EngineError(f"{name} must be >= 1, got {value}")


def _isa(isa: Optional[str]) -> int:
    name = isa or best_isa()
    if name not in ISAS:
        raise EngineError(f"unknown instruction set {name!r}; expected one of {list(ISAS)}")
    return ISAS[name]


def _check(status: int, isa: Optional[str], what: str) -> None:
    if status == -1:
        raise EngineError(f"instruction set {isa or best_isa()!r} is not supported by this CPU "
                          f"(or above RBSF_MAX_ISA) for {what}; use one of {supported_isas()}")
    if status != 0:
        raise EngineError(f"{what}: the native engine refused the call "
                          f"({_STATUS.get(status, status)})")


def pack_nhwc(x: torch.Tensor, groups: int, pad: int, threads: int, pool: bool = False,
              scale: Optional[torch.Tensor] = None, shift: Optional[torch.Tensor] = None,
              isa: Optional[str] = None) -> torch.Tensor:
    """Signs of a contiguous float32 NHWC tensor packed to [N][H'+2p][W'+2p][G][CW] int64 words.

    Before the sign: optional 3x3 / stride-2 max-pool (H' = out_size(H, 3, 2)), then optional
    per-channel ``v * scale + shift``.
    """
    _tensor(x, "activations", torch.float32, ndim=4)
    n, h, w, c = x.shape
    _positive(batch=n, channels=c, groups=groups)
    if c % groups or pad < 0 or c > 4096:
        raise EngineError(f"{c} channels cannot be packed in {groups} groups with padding {pad} "
                          f"(channels must divide into groups, at most 4096; padding >= 0)")
    if (scale is None) != (shift is None):
        raise EngineError("give both scale and shift of the affine map, or neither")
    for t, name in ((scale, "scale"), (shift, "shift")):
        if t is not None:
            _tensor(t, name, torch.float32, numel=c)
    ho, wo = (out_size(h, 3, 2), out_size(w, 3, 2)) if pool else (out_size(h, 1), out_size(w, 1))
    cw = (c // groups + 63) // 64
    out = torch.empty((n, ho + 2 * pad, wo + 2 * pad, groups, cw), dtype=torch.int64)
    status = library().rbsf_pack_nhwc(x.data_ptr(), n, h, w, c, groups, pad, int(pool),
                                      None if scale is None else scale.data_ptr(),
                                      None if shift is None else shift.data_ptr(),
                                      out.data_ptr(), out.shape[1], out.shape[2], _isa(isa),
                                      threads)
    _check(status, isa, "bit packing")
    return out


def bconv(act: torch.Tensor, weights: torch.Tensor, out_channels: int, kernel: int, stride: int,
          kreal: int, scale: torch.Tensor, shift: torch.Tensor, isa: Optional[str],
          threads: int) -> torch.Tensor:
    """``scale * (+-1 dot product) + shift`` per output channel, NHWC float32."""
    _tensor(act, "packed activations", torch.int64, ndim=5)
    n, hp, wp, groups, cw = act.shape
    _positive(out_channels=out_channels, kernel=kernel, stride=stride)
    if out_channels % groups:
        raise EngineError(f"{out_channels} output channels do not divide into {groups} groups")
    blocks = -(-(out_channels // groups) // lanes())
    _tensor(weights, "packed weights", torch.int64, numel=groups * blocks * kernel * kernel * cw
            * lanes())
    _tensor(scale, "scale", torch.float32, numel=out_channels)
    _tensor(shift, "shift", torch.float32, numel=out_channels)
    out = torch.empty((n, out_size(hp, kernel, stride), out_size(wp, kernel, stride),
                       out_channels), dtype=torch.float32)
    status = library().rbsf_bconv(act.data_ptr(), n, hp, wp, groups, cw, weights.data_ptr(),
                                  out_channels, kernel, stride, kreal, scale.data_ptr(),
                                  shift.data_ptr(), out.data_ptr(), out.shape[1], out.shape[2],
                                  _isa(isa), threads)
    _check(status, isa, "binary convolution")
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


def _image(x: torch.Tensor, channels: int, kernel: int, stride: int,
           dtype: torch.dtype = torch.float32) -> tuple:
    _tensor(x, "images", dtype, ndim=4)
    n, h, w, c = x.shape
    _positive(batch=n, kernel=kernel, stride=stride)
    if c != channels:
        raise EngineError(f"images have {c} channels, the weights want {channels}")
    return n, h, w, c, out_size(h, kernel, stride), out_size(w, kernel, stride)


def conv_real(x: torch.Tensor, wts: torch.Tensor, bias: torch.Tensor, out_channels: int,
              stride: int, isa: Optional[str], threads: int) -> torch.Tensor:
    """Real-valued convolution (no padding) of a contiguous float32 NHWC tensor with weights
    and bias from :func:`real_weight`; NHWC float32 out."""
    k, _, c, ocp = wts.shape
    n, h, w, c, ho, wo = _image(x, c, k, stride)
    _tensor(wts, "weights", torch.float32, numel=k * k * c * ocp)
    _tensor(bias, "bias", torch.float32, numel=ocp)
    out = torch.empty((n, ho, wo, out_channels), dtype=torch.float32)
    status = library().rbsf_conv_real(x.data_ptr(), n, h, w, c, wts.data_ptr(), bias.data_ptr(),
                                      out_channels, k, stride, out.data_ptr(), ho, wo,
                                      _isa(isa), threads)
    _check(status, isa, "the real-valued conv1")
    return out


def int8_supported(isa: Optional[str] = None) -> bool:
    """True when the native library has an 8-bit conv1 kernel at level ``isa`` (default: the
    best): AVX-512 VNNI from ``vnni`` up, AVX2 from ``avx2``."""
    lib = library()
    return lib is not None and ISAS["avx2"] <= _isa(isa) and bool(lib.rbsf_isa_supported(_isa(isa)))


def int8_weight(weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> tuple:
    """Integer-valued (O, C, K, K) weights, per-channel scale and bias in :func:`conv_int8`'s
    layout: int8 [K][K*C][OCP] (taps of one kernel row in (kx, c) order), float32 [OCP] scale
    and bias; OCP = O rounded up to 16, zero padded."""
    out_channels, channels, k, _ = weight.shape
    ocp = -(-out_channels // 16) * 16
    taps = torch.zeros(k, k * channels, ocp, dtype=torch.int8)
    taps[..., :out_channels] = weight.permute(2, 3, 1, 0).reshape(
        k, k * channels, out_channels).to(torch.int8)
    padded = torch.zeros(2, ocp, dtype=torch.float32)
    padded[0, :out_channels], padded[1, :out_channels] = scale, bias
    return taps.contiguous(), padded[0].clone(), padded[1].clone()


def conv_int8(x: torch.Tensor, wts: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
              out_channels: int, kernel: int, stride: int, threads: int,
              isa: Optional[str] = None) -> torch.Tensor:
    """8-bit convolution (no padding) of a contiguous NHWC tensor of 0-255 pixels, uint8 or
    float32 (rounded to the nearest integer in [0, 255] first), with weights, scale and bias from
    :func:`int8_weight`: ``float(integer sum) * scale + bias``, NHWC float32 out."""
    _tensor(wts, "8-bit weights", torch.int8, ndim=3)
    k, kc, ocp = wts.shape
    if k != kernel or kc % k or ocp < out_channels or ocp % 16:
        raise EngineError(f"8-bit weights of shape {tuple(wts.shape)} do not fit a {kernel}x"
                          f"{kernel} kernel with {out_channels} outputs")
    uint8 = x.dtype == torch.uint8
    n, h, w, c, ho, wo = _image(x, kc // k, kernel, stride, torch.uint8 if uint8 else torch.float32)
    _tensor(scale, "scale", torch.float32, numel=ocp)
    _tensor(bias, "bias", torch.float32, numel=ocp)
    out = torch.empty((n, ho, wo, out_channels), dtype=torch.float32)
    status = library().rbsf_conv_int8(x.data_ptr(), int(uint8), n, h, w, c, wts.data_ptr(),
                                      scale.data_ptr(), bias.data_ptr(), out_channels, kernel,
                                      stride, out.data_ptr(), ho, wo, _isa(isa), threads)
    _check(status, isa, "the 8-bit conv1")
    return out


def xcorr(z: torch.Tensor, x: torch.Tensor, scale: float, threads: int,
          isa: Optional[str] = None) -> torch.Tensor:
    """SiamFC's head on NHWC float32 embeddings: one exemplar z (1, HZ, WZ, C) correlated with
    every search embedding x (N, HX, WX, C), times ``scale``; (N, 1, HO, WO) float32 out."""
    _tensor(z, "exemplar embedding", torch.float32, ndim=4)
    _tensor(x, "search embeddings", torch.float32, ndim=4)
    _, hz, wz, c = z.shape
    n, hx, wx, cx = x.shape
    if z.shape[0] != 1 or c != cx:
        raise EngineError(f"exemplar {tuple(z.shape)} and searches {tuple(x.shape)} do not "
                          f"match: one exemplar with the searches' channel count is needed")
    out = torch.empty((n, 1, out_size(hx, hz), out_size(wx, wz)), dtype=torch.float32)
    status = library().rbsf_xcorr(z.data_ptr(), hz, wz, c, x.data_ptr(), n, hx, wx,
                                  float(scale), out.data_ptr(), out.shape[2], out.shape[3],
                                  _isa(isa), threads)
    _check(status, isa, "the correlation head")
    return out


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """An N x C x H x W tensor as a contiguous float32 NHWC tensor (no copy when its memory is
    channels-last already)."""
    return x.float().permute(0, 2, 3, 1).contiguous()

