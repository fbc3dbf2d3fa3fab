"""Classification backbones (ResNet18, Wide-ResNet) built from the same conv factory.

Every 3x3 convolution is a *unit* ``act(BN(conv(x))) + shortcut(x)`` (Bi-Real Net): binary
kinds thus get a real-valued shortcut around each binary convolution, and the binary path sees
the signed BN output (``act`` is an identity for binary kinds, ReLU for ``fp``). When a unit
changes resolution or width, the shortcut is average-pool + real 1x1 conv + BN, as in Bi-Real
Net. The stem convolution and the classifier stay real-valued.

Feature taps (the distillation's "feature maps at layer l"): the signed output ``BN(conv(x))``
of every unit, before its activation and its shortcut, the same quantity in the full-precision
teacher and in a binary student (the teacher's ReLU and the student's identity come after it).

Stage widths: ResNet18 takes four stage widths (e.g. ``(32, 32, 64, 128)``), its stem having
the first width; Wide-ResNet takes four numbers ``(stem, stage1, stage2, stage3)``.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from rbsf.binary import KINDS, make_conv

DEFAULT_STAGES = {
    "resnet18": (64, 128, 256, 512),
    "wrn22": (64, 64, 128, 256),
    "wrn40": (64, 64, 128, 256),
}
WRN_DEPTH = {"wrn22": 22, "wrn40": 40}


class ConvUnit(nn.Module):
    """``act(BN(conv(x))) + shortcut(x)`` with a conv of the given kind."""

    def __init__(self, kind: str, cin: int, cout: int, stride: int, c_mode: str = "scalar"):
        super().__init__()
        self.conv = make_conv(kind, cin, cout, 3, stride, 1, c_mode=c_mode)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=False) if kind == "fp" else nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(stride, ceil_mode=True, count_include_pad=False)
                if stride != 1 else nn.Identity(),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tap(x)[0]

    def forward_tap(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The unit's output and its tap ``BN(conv(x))``."""
        tap = self.bn(self.conv(x))
        return self.act(tap) + self.shortcut(x), tap


class Classifier(nn.Module):
    """Stem -> stages of ConvUnits -> global average pool -> linear classifier."""

    def __init__(self, kind: str, stem: nn.Module, stem_width: int,
                 stages: Sequence[Tuple[int, int, int]], num_classes: int, c_mode: str):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.stem = stem
        units, cin = [], stem_width
        for width, n_units, stride in stages:
            for i in range(n_units):
                units.append(ConvUnit(kind, cin, width, stride if i == 0 else 1, c_mode))
                cin = width
        self.units = nn.Sequential(*units)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_taps(x)[0]

    def forward_taps(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Logits plus the tap of every unit (each holds one binarized conv; see module doc)."""
        x = self.stem(x)
        taps = {}
        for i, unit in enumerate(self.units):
            x, taps[f"unit{i}"] = unit.forward_tap(x)
        return self.fc(torch.flatten(self.pool(x), 1)), taps

    def tap_channels(self) -> Dict[str, int]:
        """Channels of every tap, by tap name."""
        return {f"unit{i}": unit.bn.num_features for i, unit in enumerate(self.units)}

    def config(self) -> Dict[str, object]:
        """Arguments of ``build_backbone`` that rebuild this network (stored in checkpoints)."""
        return dict(self.build_args)


def _stem(kind: str, width: int, imagenet: bool, in_channels: int) -> nn.Sequential:
    act = nn.ReLU(inplace=True) if kind == "fp" else nn.Identity()
    if imagenet:
        return nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                             nn.BatchNorm2d(width), act, nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(width), act)


def build_backbone(name: str, kind: str = "fp", stages: Optional[Sequence[int]] = None,
                   num_classes: int = 10, imagenet: Optional[bool] = None,
                   c_mode: str = "scalar", in_channels: int = 3) -> Classifier:
    """Build ``resnet18``, ``wrn22`` or ``wrn40`` with convolutions of ``kind``.

    ``imagenet`` picks the 7x7/stride-2 stem for 224 inputs; by default it is used for
    ResNet18 with 1000 classes, the CIFAR 3x3 stem otherwise. ``in_channels`` is 3 for colour
    images, 1 for MNIST.
    """
    if name not in DEFAULT_STAGES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(DEFAULT_STAGES)}")
    widths = tuple(stages or DEFAULT_STAGES[name])
    if len(widths) != 4:
        raise ValueError(f"{name} takes 4 stage widths, got {widths}")
    if imagenet is None:
        imagenet = name == "resnet18" and num_classes == 1000
    if name == "resnet18":
        # 4 stages x 2 basic blocks x 2 convs = 4 units per stage
        plan = [(w, 4, 1 if i == 0 else 2) for i, w in enumerate(widths)]
        stem_width = widths[0]
    else:
        n_units = 2 * (WRN_DEPTH[name] - 4) // 6
        plan = [(w, n_units, 1 if i == 0 else 2) for i, w in enumerate(widths[1:])]
        stem_width = widths[0]
    net = Classifier(kind, _stem(kind, stem_width, imagenet, in_channels), stem_width, plan,
                     num_classes, c_mode)
    net.build_args = {"name": name, "kind": kind, "stages": list(widths),
                      "num_classes": num_classes, "imagenet": imagenet, "c_mode": c_mode,
                      "in_channels": in_channels}
    return net
