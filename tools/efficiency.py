"""Memory (bits) and FLOPs of a model in full-precision, XNOR and RB-SF form (paper's Table 6).

    python tools/efficiency.py --arch siamfc                 # AlexNet SiamFC, 255 search image
    python tools/efficiency.py --arch siamfc --size 127      # exemplar branch
    python tools/efficiency.py --arch resnet18 --json        # ImageNet ResNet18, 224
    python tools/efficiency.py --arch resnet18-cifar --stages 32,64,128,256

Convention: memory = 32 bits x real parameters + 1 bit x binary parameters; FLOPs = real
multiplications + binary multiplications / 64 (see rbsf/efficiency.py).
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import json
import sys
from typing import List, Optional

from rbsf.efficiency import ARCHS, compare, format_table
from tools.cli import ArgumentParser, fail, run_tool


def parse_stages(text: str) -> List[int]:
    try:
        stages = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--stages wants 4 comma-separated integers, got {text!r}")
    if len(stages) != 4 or min(stages) <= 0:
        raise argparse.ArgumentTypeError(f"--stages wants 4 positive widths, got {text!r}")
    return stages


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Memory and FLOPs per layer and in total of a network in fp / xnor / rbconv "
                    "form, with savings and speed-ups against full precision.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHS), default="siamfc",
                        help="network: SiamFC AlexNet backbone, ImageNet ResNet18, CIFAR ResNet18, "
                             "Wide-ResNet 22 / 40 (CIFAR)")
    parser.add_argument("--size", type=int,
                        help="input side in pixels (default: 255 siamfc, 224 resnet18, 32 CIFAR)")
    parser.add_argument("--stages", type=parse_stages, metavar="A,B,C,D",
                        help="stage widths of resnet18 / wrn (default: the architecture's own, "
                             "e.g. 64,128,256,512 for resnet18)")
    parser.add_argument("--num-classes", type=int,
                        help="classifier outputs (default: 1000 resnet18, 10 CIFAR models)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--totals-only", action="store_true", help="leave out the per-layer rows")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.arch == "siamfc" and (args.stages or args.num_classes):
        return fail("--stages and --num-classes apply to classification backbones, not siamfc")
    try:
        result = compare(args.arch, args.size, args.stages, args.num_classes)
    except (ValueError, RuntimeError) as exc:
        return fail(f"{args.arch} at size {args.size}: {str(exc).splitlines()[0]}")
    if args.json:
        if args.totals_only:
            for entry in result["kinds"].values():
                entry.pop("layers")
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result, per_layer=not args.totals_only))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
