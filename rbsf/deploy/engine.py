"""Convolution layers of the packed engine, run natively (bit-packed) or with PyTorch.

A layer computes, on NHWC float activations ``x``::

    out[..., o] = scale[o] * dot(sign(pad_{+1}(x)), sign(W_o)) + shift[o]

where the dot product of +-1 values is an integer. ``scale`` / ``shift`` fold the binary scale
(C* or XNOR's alpha), the conv bias and a batch norm directly after the conv. Backends:

* ``native``: signs packed along channels into 64-bit words, XOR + popcount in C
  (``bitconv.c``) with the instruction set picked at run time and capped by ``RBSF_MAX_ISA``
  (AVX-512 VPOPCNTQ from level ``vnni`` up, AVX2 nibble-table popcounts, scalar; see
  ``native.ISAS``), multithreaded (a small pthread pool sharing output rows);
* ``torch``: the same integer dot products as a float convolution of +-1 tensors, used when the
  native library was not compiled.

The real-valued first convolution (:func:`real_conv`) runs natively too with AVX2 / AVX-512
(fused multiply-adds in a fixed order, equal to PyTorch's convolution up to float rounding),
otherwise with PyTorch. The native kernels share rows through their own thread pool, which
keeps going when another process holds a core; PyTorch's statically split kernels wait then.

:func:`int8_conv` is the opt-in fast variant of that convolution: weights rounded to 8 bits
per output channel (symmetric), the raw 0-255 pixels taken as uint8 (exact for the tracker's
uint8 crops), integer sums (natively AVX-512 VNNI or AVX2 VPMADDWD; elsewhere a float
convolution of the same integers, exact too, so all give the same floats), then
``sum * scale + bias``.

:func:`correlate` is SiamFC's head (``out_scale * xcorr``), natively on NHWC embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from rbsf.binary import PAD_VALUE, hard_sign
from rbsf.deploy import native
from rbsf.models.siamfc import xcorr

BACKENDS = ("native", "torch")
INT8_LEVELS = 127


def default_backend() -> str:
    """``native`` when the compiled library is present, else ``torch``."""
    return "native" if native.library() is not None else "torch"


@dataclass(eq=False)
class BinaryLayer:
    """One binary convolution with its folded per-channel affine map (see module doc)."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    groups: int
    negative: torch.Tensor  # bool, (out, in/groups, k, k): True where sign(W) = -1
    scale: torch.Tensor     # float32, (out,)
    shift: torch.Tensor     # float32, (out,)
    post: list = field(default_factory=list)  # ops after the conv, see apply_post
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def kreal(self) -> int:
        """Length of one filter: the number of +-1 products in each dot product."""
        return self.in_channels // self.groups * self.kernel * self.kernel

    def signed_weight(self) -> torch.Tensor:
        """The +-1 weights as a float tensor (torch backend)."""
        if "signed" not in self._cache:
            self._cache["signed"] = 1.0 - 2.0 * self.negative.float()
        return self._cache["signed"]

    def packed_weight(self) -> torch.Tensor:
        """Weights in the native layout [G][OB][K][K][CW][LANES] of 64-bit words (int64)."""
        if "packed" not in self._cache:
            self._cache["packed"] = pack_weight(self.negative, self.groups, native.lanes())
        return self._cache["packed"]


def real_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int,
              cache: dict, backend: Optional[str] = None, isa: Optional[str] = None,
              threads: Optional[int] = None) -> torch.Tensor:
    """Real-valued convolution (no padding) of N x C x H x W images; NHWC float32 out.

    ``cache`` keeps the weights in the native layout between calls.
    """
    backend = _checked(backend)
    isa = isa or (native.best_isa() if backend == "native" else None)
    if backend == "native" and isa != "scalar":
        if "real" not in cache:
            cache["real"] = native.real_weight(weight, bias)
        wts, padded_bias = cache["real"]
        return native.conv_real(native.nhwc(x), wts, padded_bias, weight.shape[0], stride, isa,
                                threads or native.default_threads())
    y = F.conv2d(x.float().contiguous(memory_format=torch.channels_last), weight, bias, stride)
    return y.permute(0, 2, 3, 1).contiguous()


def _checked(backend: Optional[str]) -> str:
    backend = backend or default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    return backend


def quantize_weight(weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(q, scale) with ``weight ~= q * scale[o]``: q integer-valued in [-127, 127] (float32),
    one symmetric scale per output channel."""
    peak = weight.detach().float().flatten(1).abs().amax(1)
    scale = torch.where(peak > 0, peak / INT8_LEVELS, torch.ones_like(peak))
    q = torch.round(weight.detach().float() / scale[:, None, None, None])
    return q.clamp(-INT8_LEVELS, INT8_LEVELS), scale


def int8_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int,
              cache: dict, backend: Optional[str] = None, threads: Optional[int] = None,
              isa: Optional[str] = None) -> torch.Tensor:
    """:func:`real_conv` with 8-bit weights and uint8 input (see module doc); NHWC float32 out.

    Images are uint8, or float pixels rounded to the nearest integer in [0, 255]. ``cache`` keeps
    the quantized weights between calls.
    """
    backend = _checked(backend)
    if "int8" not in cache:
        cache["int8"] = quantize_weight(weight)
    q, scale = cache["int8"]
    if backend == "native" and native.int8_supported(isa):
        if "int8_native" not in cache:
            cache["int8_native"] = native.int8_weight(q, scale, bias)
        pixels = x.permute(0, 2, 3, 1).contiguous() if x.dtype == torch.uint8 else native.nhwc(x)
        return native.conv_int8(pixels, *cache["int8_native"], weight.shape[0],
                                weight.shape[2], stride, threads or native.default_threads(),
                                isa)
    sums = F.conv2d(x.float().round().clamp(0, 255), q, None, stride)
    return (sums.permute(0, 2, 3, 1) * scale + bias).contiguous()


def correlate(z: torch.Tensor, x: torch.Tensor, out_scale: float, backend: Optional[str] = None,
              isa: Optional[str] = None, threads: Optional[int] = None) -> torch.Tensor:
    """SiamFC's head ``out_scale * xcorr(z, x)`` of one exemplar embedding z (1 x C x h x w)
    and search embeddings x (N x C x H x W): N x 1 x (H-h+1) x (W-w+1) float32. Natively on
    NHWC copies of CPU tensors (channels-last ones need none), else PyTorch's grouped conv."""
    backend = _checked(backend)
    if backend == "native" and z.device.type == "cpu" and x.device.type == "cpu" \
            and z.shape[0] == 1:
        return native.xcorr(native.nhwc(z), native.nhwc(x), out_scale,
                            threads or native.default_threads(), isa)
    return xcorr(z, x) * out_scale


def pack_weight(negative: torch.Tensor, groups: int, lanes: int) -> torch.Tensor:
    """Pack (O, Cg, K, K) sign bits into [G][OB][K][K][CW][lanes] words; padding bits are 0."""
    out_channels, cg, k, _ = negative.shape
    og = out_channels // groups
    ob, cw = -(-og // lanes), -(-cg // 64)
    bits = np.zeros((groups, ob * lanes, k, k, cw * 64), dtype=np.uint8)
    per_group = negative.numpy().reshape(groups, og, cg, k, k)
    bits[:, :og, :, :, :cg] = per_group.transpose(0, 1, 3, 4, 2)
    words = np.packbits(bits.reshape(-1, 64), axis=1, bitorder="little").view("<u8")
    words = words.reshape(groups, ob, lanes, k, k, cw).transpose(0, 1, 3, 4, 5, 2)
    return torch.from_numpy(np.ascontiguousarray(words).view(np.int64))


def max_pool_nhwc(x: torch.Tensor) -> torch.Tensor:
    """3x3 / stride-2 max-pooling of a contiguous NHWC tensor, NHWC out."""
    pooled = F.max_pool2d(x.permute(0, 3, 1, 2), 3, 2)
    return pooled.permute(0, 2, 3, 1).contiguous()


def apply_post(x: torch.Tensor, post: list) -> torch.Tensor:
    """Run the ops that follow a conv on NHWC activations, in order.

    Each op is ``("pool",)`` (3x3 / stride-2 max-pooling) or ``("affine", scale, shift)``
    (a batch norm that could not be folded into the conv because a pooling precedes it).
    """
    for op in post:
        if op[0] == "pool":
            x = max_pool_nhwc(x)
        elif op[0] == "affine":
            x = torch.addcmul(op[2], x, op[1])
        else:
            raise ValueError(f"unknown post-conv op {op[0]!r}")
    return x


def _fusable(pre: Sequence[tuple]) -> bool:
    """True when the native packer can run ``pre`` itself: an optional pool, then an affine."""
    kinds = [op[0] for op in pre]
    return kinds in ([], ["pool"], ["affine"], ["pool", "affine"])


def binary_conv(x: torch.Tensor, layer: BinaryLayer, pre: Sequence[tuple] = (),
                backend: Optional[str] = None, isa: Optional[str] = None,
                threads: Optional[int] = None) -> torch.Tensor:
    """Apply ``layer`` (without its own post ops) to NHWC float32 activations; NHWC float32 out.

    ``pre`` are ops still pending on ``x`` (the previous layer's post ops, see
    :func:`apply_post`); they run before the sign, fused into the bit packing when possible.
    """
    backend = _checked(backend)
    if backend == "native":
        threads = threads or native.default_threads()
        if not _fusable(pre):
            x, pre = apply_post(x, pre), ()
        affine = next((op for op in pre if op[0] == "affine"), None)
        act = native.pack_nhwc(x.contiguous(), layer.groups, layer.padding, threads,
                               pool=any(op[0] == "pool" for op in pre),
                               scale=None if affine is None else affine[1],
                               shift=None if affine is None else affine[2], isa=isa)
        return native.bconv(act, layer.packed_weight(), layer.out_channels, layer.kernel,
                            layer.stride, layer.kreal, layer.scale, layer.shift,
                            isa, threads)
    signs = hard_sign(apply_post(x, pre).permute(0, 3, 1, 2))
    p = layer.padding
    if p:
        signs = F.pad(signs, (p, p, p, p), value=PAD_VALUE)
    dot = F.conv2d(signs, layer.signed_weight(), stride=layer.stride, groups=layer.groups)
    out = dot * layer.scale[:, None, None] + layer.shift[:, None, None]
    return out.permute(0, 2, 3, 1).contiguous()
