"""Reproduce the paper's classification tables (2 and 3) and Figure 2 at CPU scale, in one
command, on the shipped real MNIST digits (or any data set train_cls.py reads).

    python tools/reproduce_cls.py                   # 3 seeds, cpu preset (about 40 min on 2 cores)
    python tools/reproduce_cls.py --quick           # smoke preset, 1 seed: about a minute
    python tools/reproduce_cls.py --resume          # continue an interrupted run
    python tools/reproduce_cls.py --dataset cifar100 --root DIR --preset paper --device cuda

Per seed: the full-precision teacher, then from it XNOR, Bi-Real, + RBConv, + GAN and
+ BN update (= RBCN) with equal budgets; scores on the test split. Writes OUT/results.md
(tables, orderings, budgets), OUT/summary.json and OUT/fig2_errors.png.
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import sys
from pathlib import Path

import torch

from experiments.reproduce_cls import reproduce_cls
from rbsf.data.classification import DATASETS, SHIPPED_ROOTS
from rbsf.devices import check_device
from rbsf.train.config import CLS_PRESETS
from tools.cli import ArgumentParser, fail, positive_int, run_tool
from tools.train_cls import widths


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/reproduce_cls"),
                   help="output folder (default: runs/reproduce_cls)")
    p.add_argument("--seeds", type=positive_int, help="training seeds 0..N-1 (default: 3, "
                                                      "1 with --quick)")
    p.add_argument("--preset", choices=CLS_PRESETS, help="default: cpu (smoke with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke preset: seconds a model")
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--root", help="data set folder (default: data/mnist)")
    p.add_argument("--stages", type=widths, dest="widths", metavar="A-B-C-D",
                   help="kernel stage widths (default: the preset's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--threads", type=positive_int,
                   help="torch threads (1 is fastest on a shared 2-core machine)")
    p.add_argument("--resume", action="store_true",
                   help="continue a run in --out: finished trainings are reused, unfinished "
                        "ones continue from their checkpoints")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_device(args.device)
    root = args.root or SHIPPED_ROOTS.get(args.dataset)
    if root is None:
        return fail(f"--dataset {args.dataset} needs --root DIR (nothing is downloaded)")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.resume:
        return fail(f"{args.out} is not empty; pass --resume to continue the run there, or "
                    f"choose another --out")
    if args.threads:
        torch.set_num_threads(args.threads)
    preset = args.preset or ("smoke" if args.quick else "cpu")
    seeds = args.seeds or (1 if args.quick else 3)
    summary = reproduce_cls(args.out, seeds, preset, args.dataset, root, args.widths,
                            args.device)
    print((args.out / "results.md").read_text())
    print(f"{args.out / 'summary.json'}, {args.out / 'fig2_errors.png'}; "
          f"{len(summary['per_seed'])} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="rerun with --resume to continue"))
