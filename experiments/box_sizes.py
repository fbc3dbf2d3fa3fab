"""How often trackers' boxes are far too small or too large for their targets.

    python tools/eval.py --root data/cache/tuning-g --trackers packed --result-dir runs/g
    python benchmarks/classical_trackers.py --root data/cache/tuning-g --dataset custom \\
        --trackers CSRT --result-dir runs/g
    python -m experiments.box_sizes --root data/cache/tuning-g runs/g/custom --out runs/g-sizes

For every tracker with results under a RESULTS folder (the dataset's folder of
``--result-dir``; ``RESULTS=LABEL`` names its trackers ``LABEL: <tracker>``), each frame's box
side is compared with the true one (square roots of the areas, ``rbsf.eval.metrics.size_ratio``):
the share of frames whose box is under ``--small`` times the true side or over ``--large``
times it, the median ratio, and the sequences that end small (more than half of their last
``--tail`` frames under ``--small``). A box that shrinks onto a part of its target, or
balloons over the background, shows here before it shows as a lost target. Prints a markdown
table; ``--out`` also writes ``box_sizes.json`` and ``box_sizes.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from experiments import result_folders_parser, run_record_job, score_result_folders
from rbsf.data import load_sequences
from rbsf.eval.metrics import size_ratio
from rbsf.eval.report import load_result
from rbsf.eval.runner import EvalError


def size_shares(ratios: List[np.ndarray], small: float, large: float,
                tail: int) -> Dict[str, float]:
    """Shares of frames under ``small`` and over ``large``, the median ratio, and the count of
    sequences with more than half of their last ``tail`` measured frames under ``small``."""
    frames = np.concatenate([r[np.isfinite(r)] for r in ratios])
    ends = [r[np.isfinite(r)][-tail:] for r in ratios]
    return {"frames": int(frames.size),
            "small_share": float(np.mean(frames < small)) if frames.size else float("nan"),
            "large_share": float(np.mean(frames > large)) if frames.size else float("nan"),
            "median_ratio": float(np.median(frames)) if frames.size else float("nan"),
            "sequences": len(ratios),
            "ending_small": int(sum(2 * np.sum(e < small) > len(e) for e in ends if len(e)))}


def markdown(rows: List[Dict[str, object]], small: float, large: float) -> str:
    """The rows (tracker and ``size_shares``) as a markdown table."""
    lines = [f"| tracker | frames under {small:g}x the true side | over {large:g}x | "
             f"median box / true side | sequences ending under {small:g}x |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['tracker']} | {row['small_share']:.3f} | {row['large_share']:.3f} "
                     f"| {row['median_ratio']:.2f} | {row['ending_small']} of "
                     f"{row['sequences']} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = result_folders_parser(
        __doc__, "the sequences (OTB layout) the results were tracked on")
    parser.add_argument("--small", type=float, default=0.5,
                        help="a box under this times the true side is too small "
                             "(default: %(default)s)")
    parser.add_argument("--large", type=float, default=2.0,
                        help="a box over this times the true side is too large "
                             "(default: %(default)s)")
    parser.add_argument("--tail", type=int, default=20,
                        help="last frames of a sequence that say whether it ends small "
                             "(default: %(default)s)")
    parser.add_argument("--out", type=Path, help="folder for box_sizes.json and box_sizes.md")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def build() -> Tuple[dict, str]:
        if not 0 < args.small < 1 < args.large:
            raise EvalError(f"need 0 < --small < 1 < --large, got {args.small} and {args.large}")
        if args.tail < 1:
            raise EvalError(f"--tail must be at least 1, got {args.tail}")
        if not args.root.is_dir():
            raise EvalError(f"sequence folder {args.root} does not exist; give the --root the "
                            f"results were tracked on")
        sequences = load_sequences(str(args.root))
        ratios: Dict[str, List[np.ndarray]] = score_result_folders(
            args.results, args.root,
            lambda folder, name: [size_ratio(load_result(folder, name, seq, "otb")[0], seq.boxes)
                                  for seq in sequences], EvalError)
        rows = [{"tracker": name, **size_shares(r, args.small, args.large, args.tail)}
                for name, r in ratios.items()]
        return ({"root": str(args.root), "results": args.results, "small": args.small,
                 "large": args.large, "tail": args.tail, "rows": rows},
                markdown(rows, args.small, args.large))
    return run_record_job(args.out, "box_sizes", build)


if __name__ == "__main__":
    sys.exit(main())
