"""The packed RB-SF model: file format, export from a trained SiamFC, and the inference network.

File format (``torch.save`` of a dict, ``"format": "rbsf-packed"``)::

    {"format", "version", "source_kind", "width", "out_scale",
     "conv1": {"weight", "bias", "stride", "post"},            # real-valued
     "layers": [{"name", "in_channels", "out_channels", "kernel", "stride", "padding",
                 "groups", "bits", "scale", "shift", "post"}, ...]}

``bits`` holds sign(W) < 0 of a binary conv, one bit per weight (``np.packbits`` of the
(out, in/groups, k, k) array, big-endian bit order, as uint8). ``scale`` / ``shift`` fold C*
(or XNOR's alpha), the conv bias and a batch norm met directly after the conv:
``scale * popcount_dot + shift``. ``post`` lists what follows in the trained block, in order:
``{"op": "pool"}`` (3x3 / stride-2 max-pooling) or ``{"op": "affine", "scale", "shift"}`` (a
batch norm behind a pooling, which cannot move in front of it since C* may be negative). The
next binary conv only needs the sign of that result, so the engine runs the pending pool and
affine map inside its bit packing: per channel, a threshold comparison ``v * scale + shift < 0``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from rbsf.binary import QuantConv2d, hard_sign
from rbsf.deploy.engine import BinaryLayer, apply_post, binary_conv, int8_conv, real_conv
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet, xcorr

PACKED_FORMAT = "rbsf-packed"
VERSION = 1
CONV1_MODES = ("fp32", "int8")


def is_packed(data: Dict[str, Any]) -> bool:
    """True for a loaded packed-model payload."""
    return data.get("format") == PACKED_FORMAT


def _bn_affine(bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """(s, t) with BN(y) = s * y + t (inference statistics), in float64."""
    s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return s, bn.bias.double() - bn.running_mean.double() * s


def _fold_block(name: str, block: nn.Sequential) -> Tuple[torch.Tensor, torch.Tensor, list]:
    """Split the modules after a block's conv into an affine map folded into the conv
    (s, t: the batch norms met before any pooling) and the remaining post ops."""
    channels = block[0].out_channels
    s = torch.ones(channels, dtype=torch.float64)
    t = torch.zeros(channels, dtype=torch.float64)
    post: list = []
    for m in list(block)[1:]:
        if isinstance(m, nn.Identity):
            continue
        if isinstance(m, nn.BatchNorm2d):
            bs, bt = _bn_affine(m)
            if not post:
                s, t = s * bs, t * bs + bt
            elif post[-1][0] == "affine":
                post[-1] = ("affine", post[-1][1] * bs, post[-1][2] * bs + bt)
            else:
                post.append(("affine", bs, bt))
        elif isinstance(m, nn.MaxPool2d) and (m.kernel_size, m.stride, m.padding) == (3, 2, 0):
            post.append(("pool",))
        else:
            raise ValueError(f"{name}: cannot pack a {type(m).__name__} (only binary SiamFC "
                             f"models of kind xnor or rbconv can be packed, not kind fp)")
    post = [(op[0], op[1].float(), op[2].float()) if op[0] == "affine" else op for op in post]
    return s, t, post


def _conv_bias(conv: nn.Conv2d) -> torch.Tensor:
    if conv.bias is None:
        return torch.zeros(conv.out_channels, dtype=torch.float64)
    return conv.bias.detach().double()


def _filter_scale(name: str, conv: QuantConv2d) -> torch.Tensor:
    """Per-output-filter factor f with quantized weight = f * sign(W) (C* or XNOR's alpha)."""
    q = conv.quantized_weight().double()
    signs = hard_sign(conv.weight).double()
    scale = (q * signs).flatten(1).mean(1)
    if not torch.allclose(q, scale[:, None, None, None] * signs, rtol=1e-5, atol=1e-12):
        raise ValueError(f"{name}: the binary weight is not one scale per filter times sign(W) "
                         f"(c_mode 'matrix' cannot be packed; train with c_mode 'scalar')")
    return scale


def _binary_layer(name: str, block: nn.Sequential) -> BinaryLayer:
    conv = block[0]
    if not isinstance(conv, QuantConv2d):
        raise ValueError(f"{name} is not a binary convolution: only binary SiamFC models "
                         f"(kind xnor or rbconv) can be packed")
    if conv.dilation != (1, 1) or len(set(conv.kernel_size)) != 1 or len(set(conv.stride)) != 1 \
            or len(set(conv.padding)) != 1:
        raise ValueError(f"{name}: only square kernels, strides and paddings, no dilation")
    s, t, post = _fold_block(name, block)
    return BinaryLayer(name, conv.in_channels, conv.out_channels, conv.kernel_size[0],
                       conv.stride[0], conv.padding[0], conv.groups,
                       (conv.weight < 0).detach().clone(),
                       (s * _filter_scale(name, conv)).float(), (s * _conv_bias(conv) + t).float(),
                       post)


def _post_payload(post: list) -> list:
    return [{"op": "pool"} if op[0] == "pool" else
            {"op": "affine", "scale": op[1].clone(), "shift": op[2].clone()} for op in post]


def _post_from_payload(entries: list) -> list:
    return [("pool",) if e["op"] == "pool" else ("affine", e["scale"].float(), e["shift"].float())
            for e in entries]


class PackedSiamFC(nn.Module):
    """Inference-only SiamFC on the packed engine: real conv1, bit-packed binary conv2..conv5.

    Same interface as :class:`rbsf.models.siamfc.SiamFCNet` for tracking: ``backbone(x)``,
    ``out_scale``, ``forward(z, x)``; ``backend`` / ``isa`` / ``threads`` pick how the binary
    layers run (defaults: native library with the best instruction set, else PyTorch).
    ``conv1_mode`` picks conv1's arithmetic: ``"fp32"`` (default, exact) or ``"int8"`` (weights
    rounded to 8 bits per channel, ~4x faster with AVX-512 VNNI; see ``engine.int8_conv``).
    """

    def __init__(self, conv1: Dict[str, Any], layers: List[BinaryLayer], out_scale: float,
                 kind: str = "rbconv", width: float = 1.0, conv1_mode: str = "fp32"):
        super().__init__()
        self.register_buffer("conv1_weight", conv1["weight"].float().contiguous(
            memory_format=torch.channels_last))
        self.register_buffer("conv1_bias", conv1["bias"].float().contiguous())
        self._conv1_cache: Dict[str, Any] = {}
        self.conv1_stride = int(conv1["stride"])
        self.conv1_post = list(conv1["post"])
        self.layers = layers
        self.out_scale = float(out_scale)
        self.kind = kind
        self.width = width
        self.backend: Optional[str] = None
        self.isa: Optional[str] = None
        self.threads: Optional[int] = None
        self.conv1_mode = conv1_mode

    @property
    def conv1_mode(self) -> str:
        """conv1's arithmetic, one of :data:`CONV1_MODES`."""
        return self._conv1_mode

    @conv1_mode.setter
    def conv1_mode(self, mode: str) -> None:
        if mode not in CONV1_MODES:
            raise ValueError(f"unknown conv1 mode {mode!r}; expected one of {CONV1_MODES}")
        self._conv1_mode = mode

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Real-valued conv1 with the BN folded where possible; NHWC float32 out (its post ops
        still pending)."""
        if self.conv1_mode == "int8":
            return int8_conv(x, self.conv1_weight, self.conv1_bias, self.conv1_stride,
                             self._conv1_cache, self.backend, self.threads, self.isa)
        return real_conv(x, self.conv1_weight, self.conv1_bias, self.conv1_stride,
                         self._conv1_cache, self.backend, self.isa, self.threads)

    def stages(self, x: torch.Tensor) -> Iterator[Tuple[str, torch.Tensor, list]]:
        """Run the backbone step by step: yields (name, NHWC output, its pending post ops)."""
        y, pending = self.stem(x), self.conv1_post
        yield "conv1", y, pending
        for layer in self.layers:
            y = binary_conv(y, layer, pending, self.backend, self.isa, self.threads)
            pending = layer.post
            yield layer.name, y, pending

    @torch.no_grad()
    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding (N x C x H x W, channels-last memory) of raw 0-255 RGB images
        (N x 3 x H x W, float or uint8: the same embedding)."""
        for _, y, pending in self.stages(x):
            pass
        return apply_post(y, pending).permute(0, 3, 1, 2)

    @torch.no_grad()
    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return xcorr(self.backbone(z), self.backbone(x)) * self.out_scale

    def config(self) -> Dict[str, object]:
        """What the packed model was made from: the conv kind of its binary layers (xnor or
        rbconv) and its width."""
        return {"kind": self.kind, "packed": True, "width": self.width}

    def payload(self) -> Dict[str, Any]:
        """The packed file's content (see module doc)."""
        layers = [{"name": layer.name, "in_channels": layer.in_channels,
                   "out_channels": layer.out_channels, "kernel": layer.kernel,
                   "stride": layer.stride, "padding": layer.padding, "groups": layer.groups,
                   "bits": torch.from_numpy(np.packbits(layer.negative.numpy().reshape(-1))),
                   "scale": layer.scale.clone(), "shift": layer.shift.clone(),
                   "post": _post_payload(layer.post)} for layer in self.layers]
        return {"format": PACKED_FORMAT, "version": VERSION, "source_kind": self.kind,
                "width": self.width, "out_scale": self.out_scale,
                "conv1": {"weight": self.conv1_weight.contiguous().clone(),
                          "bias": self.conv1_bias.clone(),
                          "stride": self.conv1_stride, "post": _post_payload(self.conv1_post)},
                "layers": layers}

    @classmethod
    def from_payload(cls, data: Dict[str, Any]) -> "PackedSiamFC":
        """Rebuild the network from a loaded packed file (``ValueError`` when malformed)."""
        if not is_packed(data) or data.get("version") != VERSION:
            raise ValueError(f"not a packed RB-SF model of version {VERSION} "
                             f"(format {data.get('format')!r}, version {data.get('version')!r})")
        try:
            layers = []
            for e in data["layers"]:
                shape = (e["out_channels"], e["in_channels"] // e["groups"], e["kernel"],
                         e["kernel"])
                bits = np.unpackbits(e["bits"].numpy(), count=int(np.prod(shape)))
                negative = torch.from_numpy(bits.reshape(shape).astype(bool))
                layers.append(BinaryLayer(e["name"], e["in_channels"], e["out_channels"],
                                          e["kernel"], e["stride"], e["padding"], e["groups"],
                                          negative, e["scale"].float(), e["shift"].float(),
                                          _post_from_payload(e["post"])))
            conv1 = dict(data["conv1"], post=_post_from_payload(data["conv1"]["post"]))
            return cls(conv1, layers, data["out_scale"], data["source_kind"], data["width"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"packed model is malformed ({type(exc).__name__}: {exc})") from exc


@torch.no_grad()
def pack_model(net: SiamFCNet) -> PackedSiamFC:
    """Export a binary SiamFC (kind ``xnor`` or ``rbconv``, c_mode ``scalar``) to the engine."""
    if net.kind not in ("xnor", "rbconv"):
        raise ValueError(f"only binary SiamFC models (kind xnor or rbconv) can be packed, "
                         f"got kind {net.kind!r}")
    net = net.eval()
    names = list(net.backbone.SPEC)
    first = getattr(net.backbone, names[0])
    conv = first[0]
    s, t, post = _fold_block(names[0], first)
    conv1 = {"weight": (conv.weight.double() * s[:, None, None, None]).float(),
             "bias": (s * _conv_bias(conv) + t).float(), "stride": conv.stride[0], "post": post}
    layers = [_binary_layer(name, getattr(net.backbone, name)) for name in names[1:]]
    return PackedSiamFC(conv1, layers, net.out_scale, net.kind, net.width)


def save_packed(net: Union[SiamFCNet, PackedSiamFC], path: Union[str, os.PathLike]) -> None:
    """Write the packed model file of ``net`` (packing it first when it is a SiamFCNet)."""
    packed = net if isinstance(net, PackedSiamFC) else pack_model(net)
    save_atomic(packed.payload(), path)
