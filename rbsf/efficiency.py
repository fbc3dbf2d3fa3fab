"""Memory and FLOPs accounting of full-precision and binary networks (the paper's Table 6).

Convention (RBCN Table 6, after Bi-Real Net):

* memory = 32 bits x real-valued parameters + 1 bit x binary parameters;
* FLOPs = real-valued multiplications + binary multiplications / 64.

Binary parameters are the latent weights of binarized convolutions (``rbsf.binary.QuantConv2d``),
kept as sign bits. Real parameters are everything else that inference keeps: real conv / linear
weights and biases, batch-norm scales and shifts, RBConv's C* (one scalar per layer, or the full
matrix with ``c_mode="matrix"``) and XNOR's alpha (one per output filter, computed from the weights
but stored for inference). Multiplications are counted for convolutions and linear layers only
(output elements x filter length), measured with forward hooks on one input; batch norms, poolings
and the per-channel binary scales are not counted (they fold into thresholds at inference).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from rbsf.binary import QuantConv2d, RBConv2d, XNORConv2d

REAL_BITS = 32
BINARY_BITS = 1
BINARY_OPS_PER_FLOP = 64
KINDS = ("fp", "xnor", "rbconv")
KIND_LABELS = {"fp": "Full precision", "xnor": "XNOR", "rbconv": "RB-SF / RBCN"}


@dataclass
class LayerCost:
    """Cost of one module: a conv / linear layer, or the other parameters of the model."""

    name: str
    type: str                # "real", "binary" or "other"
    real_params: int
    binary_params: int
    macs: int
    memory_bits: int
    flops: float


@dataclass
class ModelCost:
    """Totals and per-layer costs of one model."""

    layers: List[LayerCost] = field(default_factory=list)

    @property
    def memory_bits(self) -> int:
        return sum(layer.memory_bits for layer in self.layers)

    @property
    def flops(self) -> float:
        return sum(layer.flops for layer in self.layers)

    def as_dict(self) -> Dict[str, object]:
        return {"memory_bits": self.memory_bits, "flops": self.flops,
                "layers": [asdict(layer) for layer in self.layers]}


def _scale_params(module: QuantConv2d) -> int:
    """Real numbers a binary conv keeps besides its sign bits (C* / C, or XNOR's alpha)."""
    if isinstance(module, RBConv2d):
        return 1 if module.weight_quantizer.c_mode == "scalar" else module.C.numel()
    if isinstance(module, XNORConv2d):
        return module.out_channels
    return sum(p.numel() for p in module.weight_quantizer.parameters())


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        per_output = module.in_channels // module.groups * module.kernel_size[0] \
            * module.kernel_size[1]
        return output[0].numel() * per_output
    return output[0].numel() // module.out_features * module.in_features * module.out_features


def count(model: nn.Module, input_shape: Sequence[int]) -> ModelCost:
    """Memory and FLOPs of ``model`` for one input of shape ``input_shape`` (C, H, W)."""
    macs: Dict[str, int] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(
                lambda m, _i, out, name=name: macs.__setitem__(name, _macs(m, out))))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()

    cost, counted = ModelCost(), set()
    for name, module in model.named_modules():
        if name not in macs:
            continue
        params = dict(module.named_parameters())
        counted.update(id(p) for p in params.values())
        if isinstance(module, QuantConv2d):
            binary = module.weight.numel()
            real = (module.bias.numel() if module.bias is not None else 0) + _scale_params(module)
            flops = macs[name] / BINARY_OPS_PER_FLOP
            kind = "binary"
        else:
            binary, real = 0, sum(p.numel() for p in params.values())
            flops = float(macs[name])
            kind = "real"
        cost.layers.append(LayerCost(name, kind, real, binary, macs[name],
                                     real * REAL_BITS + binary * BINARY_BITS, flops))
    other = sum(p.numel() for p in model.parameters() if id(p) not in counted)
    if other:
        cost.layers.append(LayerCost("other (batch norm, ...)", "other", other, 0, 0,
                                     other * REAL_BITS, 0.0))
    return cost


def _siamfc(kind: str, size: int) -> Tuple[nn.Module, Tuple[int, int, int]]:
    from rbsf.models.siamfc import SiamFCNet
    return SiamFCNet(kind).backbone, (3, size, size)


def _classifier(name: str, imagenet: bool) -> Callable:
    def build(kind: str, size: Optional[int], stages: Optional[Sequence[int]] = None,
              num_classes: Optional[int] = None):
        from rbsf.models.backbones import build_backbone
        classes = num_classes or (1000 if imagenet else 10)
        model = build_backbone(name, kind, stages, classes, imagenet=imagenet)
        size = size or (224 if imagenet else 32)
        return model, (3, size, size)
    return build


ARCHS: Dict[str, Callable] = {
    "siamfc": lambda kind, size=None, **_: _siamfc(kind, size or 255),
    "resnet18": _classifier("resnet18", imagenet=True),
    "resnet18-cifar": _classifier("resnet18", imagenet=False),
    "wrn22": _classifier("wrn22", imagenet=False),
    "wrn40": _classifier("wrn40", imagenet=False),
}


def compare(arch: str, size: Optional[int] = None, stages: Optional[Sequence[int]] = None,
            num_classes: Optional[int] = None) -> Dict[str, object]:
    """Costs of ``arch`` in every kind, with memory saving and speed-up against ``fp``.

    ``size`` is the input side (siamfc: 255 search or 127 exemplar; resnet18: 224; CIFAR: 32).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(ARCHS)}")
    result: Dict[str, object] = {"arch": arch, "kinds": {}}
    for kind in KINDS:
        if arch == "siamfc":
            model, shape = ARCHS[arch](kind, size)
        else:
            model, shape = ARCHS[arch](kind, size, stages, num_classes)
        result["input"] = list(shape)
        result["kinds"][kind] = count(model, shape).as_dict()
    base = result["kinds"]["fp"]
    for entry in result["kinds"].values():
        entry["memory_saving"] = base["memory_bits"] / entry["memory_bits"]
        entry["speedup"] = base["flops"] / entry["flops"]
    return result


def format_table(result: Dict[str, object], per_layer: bool = True) -> str:
    """Text report: Table 6 layout (memory, saving, FLOPs, speed-up), then per-layer rows."""
    lines = [f"{result['arch']} at input {'x'.join(map(str, result['input']))}", "",
             f"{'model':<16}{'memory (Mbit)':>15}{'saving':>9}{'FLOPs':>12}{'speed-up':>10}"]
    for kind, entry in result["kinds"].items():
        lines.append(f"{KIND_LABELS[kind]:<16}{entry['memory_bits'] / 1e6:>15.3f}"
                     f"{entry['memory_saving']:>8.1f}x{entry['flops']:>12.3e}"
                     f"{entry['speedup']:>9.1f}x")
    if per_layer:
        for kind, entry in result["kinds"].items():
            lines += ["", f"{KIND_LABELS[kind]} per layer:",
                      f"  {'layer':<28}{'type':<8}{'params':>11}{'memory (bit)':>14}{'FLOPs':>12}"]
            for layer in entry["layers"]:
                params = layer["real_params"] + layer["binary_params"]
                lines.append(f"  {layer['name']:<28}{layer['type']:<8}{params:>11d}"
                             f"{layer['memory_bits']:>14d}{layer['flops']:>12.3e}")
    return "\n".join(lines)
