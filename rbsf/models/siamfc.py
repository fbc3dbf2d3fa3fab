"""SiamFC: AlexNetV1 backbone + cross-correlation head, in fp / xnor / rbconv form.

Block order. The teacher (``kind="fp"``) keeps the original AlexNet order
``conv -> BN -> ReLU -> maxpool``. In a binary network every block feeds a binary convolution,
so it drops its ReLU (an identity takes its place) and pools *before* BN:
``conv -> maxpool -> BN -> sign -> binary conv``. A ReLU in front of a sign would make every
input +1 and kill the layer; max-pooling a signed map shifts it towards positive values, so BN
re-centres the pooled map and its learnable shift acts as the threshold of the sign. The modules
keep siamfc-pytorch's indices (0 conv, 1 BN, 2 activation, 3 pool) whatever the execution
order, so state-dict keys are the same in every kind. conv1 stays real-valued in every kind.

Feature taps: the distillation compares, at every binarized layer l = conv2..conv5, the block's
signed output before its activation (pooled BN output for conv2, BN output for conv3/conv4,
raw output for conv5). For the teacher this is ``pool(BN(conv))``, which equals
``BN(pool(conv))`` of the student's order up to BN statistics (BN with positive scale commutes
with max-pooling), so both sides show the same quantity at the same resolution.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Mapping, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from rbsf.binary import KINDS, make_conv, reset_scales

TAP_LAYERS = ("conv2", "conv3", "conv4", "conv5")
# The name reports and plots give a SiamFC network, by the conv kind of its layers 2-5.
MODEL_NAMES = {"fp": "SiamFC", "xnor": "XNOR-SF", "rbconv": "RB-SF"}
BN_EPS = 1e-6
BN_MOMENTUM = 0.05
OUT_SCALE = 1e-3
ACT = "2"  # index of the activation inside each block (siamfc-pytorch layout)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class AlexNetV1(nn.Module):
    """SiamFC's AlexNet (total stride 8, no padding); conv2..conv5 of the given kind."""

    # name: (in, out, kernel, stride, groups, has_bn, has_pool)
    SPEC = OrderedDict([
        ("conv1", (3, 96, 11, 2, 1, True, True)),
        ("conv2", (96, 256, 5, 1, 2, True, True)),
        ("conv3", (256, 384, 3, 1, 1, True, False)),
        ("conv4", (384, 384, 3, 1, 2, True, False)),
        ("conv5", (384, 256, 3, 1, 2, False, False)),
    ])

    def __init__(self, kind: str = "fp", c_mode: str = "scalar", width: float = 1.0):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        cin = 3                  # each layer takes the channels the one before gives
        for name, (_, cout, k, s, g, has_bn, has_pool) in self.SPEC.items():
            cout = _scaled(cout, width, g)
            layer_kind = "fp" if name == "conv1" else kind
            modules = [("0", make_conv(layer_kind, cin, cout, k, s, 0, g, bias=True,
                                       c_mode=c_mode))]
            if has_bn:
                modules += [("1", _bn(cout)),
                            (ACT, nn.ReLU(inplace=True) if kind == "fp" else nn.Identity())]
            if has_pool:
                position = len(modules) if kind == "fp" else 1
                modules.insert(position, ("3", nn.MaxPool2d(3, 2)))
            setattr(self, name, nn.Sequential(OrderedDict(modules)))
            cin = cout
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.SPEC:
            x = getattr(self, name)(x)
        return x

    def forward_taps(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Embedding plus the pre-activation map of every binarized layer (see module doc)."""
        taps = {}
        for name in self.SPEC:
            block = getattr(self, name)
            if name in TAP_LAYERS:
                taps[name] = x = _without_activation(block, x)
                activation = block._modules.get(ACT)
                x = activation(x) if activation is not None else x
            else:
                x = block(x)
        return x, taps


def _without_activation(block: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for key, module in block._modules.items():
        if key != ACT:
            x = module(x)
    return x


def _scaled(channels: int, width: float, groups: int) -> int:
    """Channel count scaled by ``width``, kept a multiple of 2*groups (for grouped convs)."""
    unit = 2 * groups
    return max(unit, int(round(channels * width / unit)) * unit)


def xcorr(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-correlate each exemplar embedding with its own search embedding (batched)."""
    nz = z.size(0)
    nx, c, h, w = x.shape
    x = x.reshape(-1, nz * c, h, w)
    out = F.conv2d(x, z, groups=nz)
    return out.reshape(nx, -1, out.size(-2), out.size(-1))


class SiamFCNet(nn.Module):
    """Siamese network: ``response = 0.001 * xcorr(phi(z), phi(x))``.

    127x127 exemplar with a 255x255 search image gives a 17x17 response (239 gives 15x15).
    ``width`` < 1 shrinks every channel count (small CPU presets); 1.0 is the paper's net.
    """

    def __init__(self, kind: str = "fp", c_mode: str = "scalar", width: float = 1.0):
        super().__init__()
        self.kind = kind
        self.c_mode = c_mode
        self.width = width
        self.backbone = AlexNetV1(kind, c_mode, width)
        self.out_scale = OUT_SCALE
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """SiamFC's initialisation: Xavier-uniform convolutions, zero biases, BN (1, 0);
        then every RBConv's C from its weights."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        reset_scales(self)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return xcorr(self.backbone(z), self.backbone(x)) * self.out_scale

    def forward_taps(self, z: torch.Tensor, x: torch.Tensor
                     ) -> Tuple[torch.Tensor, Dict[str, Tuple[torch.Tensor, torch.Tensor]]]:
        """Response map and, per binarized layer, the (exemplar, search) feature maps."""
        fz, taps_z = self.backbone.forward_taps(z)
        fx, taps_x = self.backbone.forward_taps(x)
        taps = {name: (taps_z[name], taps_x[name]) for name in TAP_LAYERS}
        return xcorr(fz, fx) * self.out_scale, taps

    def config(self) -> Dict[str, object]:
        """Constructor arguments, stored in checkpoints so a model can be rebuilt."""
        return {"kind": self.kind, "c_mode": self.c_mode, "width": self.width}

    def load_teacher_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load full-precision weights (ours or siamfc-pytorch's key layout) into any kind.

        For binary kinds the latent weights W take the teacher's weights and every C is then
        re-initialised from them; all teacher keys must be present.
        """
        state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("weight_quantizer.C")]
        if missing or unexpected:
            raise KeyError(f"state dict does not match SiamFC AlexNetV1: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
        reset_scales(self)
