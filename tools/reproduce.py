"""Reproduce the RB-SF comparison at small scale, from nothing, in one command.

    python tools/reproduce.py                    # one seed, cpu preset (about 25 min on 2 cores)
    python tools/reproduce.py --quick            # tiny data, smoke-sized nets, a few steps: about a minute
    python tools/reproduce.py --seeds 3          # mean ± std over three training seeds
    python tools/reproduce.py --resume           # continue an interrupted run
    python tools/reproduce.py --preset gpu --device cuda --seeds 3   # more data, longer training
    python tools/reproduce.py --ship-weights     # also copy seed 0's models into data/weights
    python tools/reproduce.py --preset gpu --device cuda --seeds 3 --teacher data/weights/siamfc.pt
                                                 # students only, from a given teacher

Generates training sequences and a held-out test set (from photos training never sees) out of
data/photos, trains the teacher, XNOR-SF, the RB-SF ablation steps (RBConv only, + GAN,
+ BN update) and RB-SF with the non-saturating GAN term, evaluates all of them with rbsf.eval
(tracking, and pair scores on held-out pairs), and writes <out>/results.md (tables),
<out>/summary.json and the success / precision plots.
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from experiments.reproduce import (RUN_BY_ID, check_shipping, markdown_table, reproduce,
                                  ship_weights)
from rbsf.devices import check_device
from rbsf.train import PRESETS
from tools.cli import ArgumentParser, positive_float, positive_int, run_tool
from trackers.registry import SHIPPED_WEIGHTS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Generate data, train teacher / XNOR / RB-SF ablations, evaluate them on "
                    "held-out sequences and write the comparison table and plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/reproduce"),
                        help="output folder (data, per-seed trainings and reports, results.md, "
                             "summary.json, plots)")
    parser.add_argument("--seeds", type=positive_int, default=1,
                        help="training seeds 0..N-1; with N > 1 the table shows mean ± std")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data and a few training steps (the smoke preset, or "
                             "--preset, cut to one epoch of two mini-batches per stage): "
                             "about a minute")
    parser.add_argument("--preset", choices=PRESETS,
                        help="training preset; unset: cpu, or smoke with --quick")
    parser.add_argument("--resume", action="store_true",
                        help="continue a run in --out: finished trainings and tracked sequences "
                             "are kept, unfinished trainings resume from their checkpoints")
    parser.add_argument("--ship-weights", action="store_true",
                        help="copy seed 0's teacher / XNOR / RB-SF into --weights-dir as "
                             "siamfc.pt, xnor.pt, rbsf.pt (compact, float16 storage) "
                             "and their facts in weights.json")
    parser.add_argument("--weights-dir", type=Path, default=SHIPPED_WEIGHTS,
                        help="where --ship-weights writes")
    parser.add_argument("--pairs-scale", type=positive_float, default=1.0,
                        help="multiply every stage's pairs per epoch (training budget) by this")
    parser.add_argument("--device", default="cpu",
                        help="training and tracking device: cpu or cuda")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="sequences tracked in parallel processes during evaluation")
    parser.add_argument("--photos", help="folder of photos to render sequences from; unset: "
                                         "data/photos")
    parser.add_argument("--teacher", type=Path,
                        help="full-precision checkpoint (ours, e.g. data/weights/siamfc.pt, or "
                             "siamfc-pytorch's) used as every seed's teacher instead of "
                             "training one; its width must match the preset's")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    check_device(args.device)
    if args.ship_weights:
        check_shipping(args.weights_dir, args.teacher)
    summary = reproduce(args.out, args.seeds, args.quick, args.preset, args.device, args.resume,
                        args.workers, args.photos, args.pairs_scale, args.teacher)
    print(markdown_table(summary))
    for run_id, gaps in summary["gap_closed"].items():
        gap = gaps["success_auc"]["of_means"]
        if gap is not None:
            print(f"{RUN_BY_ID[run_id].row} closes {100 * gap:.0f} % of the XNOR -> "
                  f"full-precision success gap")
    print(f"wrote {args.out / 'results.md'}, {args.out / 'summary.json'} and the plots")
    if args.ship_weights:
        facts = ship_weights(summary, args.weights_dir)
        print(json.dumps(facts, indent=2))
        print(f"shipped {', '.join(facts['models'])} and weights.json to {args.weights_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="rerun with --resume to continue"))
