"""Efficiency accounting: a tiny model against a hand computation, known totals, the tool."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch.nn as nn

from rbsf.binary import make_conv
from rbsf.efficiency import compare, count

ROOT = Path(__file__).resolve().parents[1]


def _tiny(kind):
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),                                   # 8x8 -> 6x6, real
        nn.BatchNorm2d(4),
        make_conv(kind, 4, 8, 3, 1, 1, groups=2, bias=True),  # 6x6 -> 6x6, binary unless fp
        nn.Flatten(),
        nn.Linear(8 * 36, 2))


@pytest.mark.parametrize("kind,scale_params", [("fp", None), ("rbconv", 1), ("xnor", 8)])
def test_tiny_model_by_hand(kind, scale_params):
    cost = count(_tiny(kind), (3, 8, 8))
    rows = {layer.name: layer for layer in cost.layers}
    # conv1: 4x6x6 outputs x 27 products; 108 weights + 4 biases
    assert (rows["0"].macs, rows["0"].flops, rows["0"].memory_bits) == (3888, 3888, 112 * 32)
    # conv2: 8x6x6 outputs x (2 x 3 x 3) products; 144 weights + 8 biases
    conv2 = rows["2"]
    assert conv2.macs == 5184
    if kind == "fp":
        assert (conv2.type, conv2.flops, conv2.memory_bits) == ("real", 5184, 152 * 32)
    else:
        assert (conv2.type, conv2.flops) == ("binary", 5184 / 64)
        assert conv2.memory_bits == 144 + (8 + scale_params) * 32
    # linear: 288 x 2 products, 578 parameters; batch norm: 8 parameters
    assert (rows["4"].macs, rows["4"].memory_bits) == (576, 578 * 32)
    assert cost.layers[-1].memory_bits == 8 * 32 and cost.layers[-1].type == "other"
    assert cost.flops == pytest.approx(3888 + 576 + (5184 if kind == "fp" else 5184 / 64))


def test_siamfc_and_resnet18_totals():
    siamfc = compare("siamfc")["kinds"]
    assert siamfc["fp"]["flops"] == pytest.approx(2.72e9, rel=0.01)
    assert siamfc["fp"]["layers"][0]["flops"] == pytest.approx(0.527e9, rel=0.01)
    assert siamfc["rbconv"]["memory_saving"] > 18
    resnet = compare("resnet18")["kinds"]   # Bi-Real Net / RBCN Table 6: 374.1 Mbit, 1.81e9
    assert resnet["fp"]["memory_bits"] / 1e6 == pytest.approx(374.1, abs=0.1)
    assert resnet["fp"]["flops"] == pytest.approx(1.81e9, rel=0.005)
    assert resnet["rbconv"]["memory_bits"] / 1e6 == pytest.approx(33.6, abs=0.2)


def _tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "efficiency.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_tool_json_and_errors():
    done = _tool("--arch", "resnet18-cifar", "--stages", "32,32,64,128", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["kinds"]) == {"fp", "xnor", "rbconv"}
    assert {"memory_bits", "flops", "memory_saving", "speedup", "layers"} <= set(
        result["kinds"]["rbconv"])
    assert result["input"] == [3, 32, 32]
    done = _tool("--arch", "siamfc", "--size", "10")
    assert done.returncode == 2 and done.stderr.startswith("error:")
    assert done.stderr.strip().count("\n") == 0
