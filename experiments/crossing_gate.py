"""Count how often trackers keep their target when a look-alike passes it (rendered crossings).

    python tools/prepare_data.py tuning --crossing --out data/cache/crossings --sequences 48
    python tools/eval.py --root data/cache/crossings --trackers packed --result-dir runs/cross
    python benchmarks/classical_trackers.py --root data/cache/crossings --dataset custom \\
        --trackers CSRT --result-dir runs/cross
    python -m experiments.crossing_gate --root data/cache/crossings runs/cross/custom --base CSRT
    python -m experiments.crossing_gate --root data/cache/crossings runs/cross/custom \\
        "runs/cross-new/custom=new settings" --base "RB-SF packed" --out runs/cross-gate

Every tracker with results under a RESULTS folder (the dataset's folder of ``--result-dir``,
``custom`` for ``--dataset custom``) is scored on every sequence: kept, switched to the
look-alike, lost, lost before the crossing, or no crossing (``rbsf.eval.crossings``).
``RESULTS=LABEL`` names that folder's trackers ``LABEL: <tracker>``. With ``--base``, each
tracker's row also counts the sequences it kept and the base did not, and the other way round
(of those both met on target): the paired counts that decide whether a change keeps more
targets. Prints a markdown table; ``--out`` also writes ``crossings.json`` (every outcome),
``crossings.md`` and ``crossings.png`` (a bar of outcomes per tracker).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from experiments import result_folders_parser, run_job, score_result_folders
from rbsf.data import load_sequences
from rbsf.eval.crossings import (WINDOW, CrossingError, crossing_rows, markdown, score_results,
                                 write_report)
from rbsf.files import check_writable_dir


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = result_folders_parser(
        __doc__, "the crossing set (tools/prepare_data.py ... --crossing)")
    parser.add_argument("--base", help="a tracker to count each other's kept sequences against")
    parser.add_argument("--window", type=int, default=WINDOW,
                        help="frames after the crossing that decide the outcome (default: "
                             "%(default)s)")
    parser.add_argument("--out", type=Path,
                        help="folder for crossings.json, crossings.md and crossings.png")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def job() -> str:
        if args.window < 1:
            raise CrossingError(f"--window must be at least 1, got {args.window}")
        if not args.root.is_dir():
            raise CrossingError(f"crossing set {args.root} does not exist; make one with "
                                f"`python tools/prepare_data.py tuning --crossing --out DIR`")
        if args.out is not None:
            check_writable_dir(args.out, "--out")
        sequences = load_sequences(str(args.root))
        outcomes = score_result_folders(
            args.results, args.root,
            lambda folder, name: score_results(args.root, sequences, folder, name, args.window),
            CrossingError)
        if args.base is not None and args.base not in outcomes:
            raise CrossingError(f"no tracker {args.base!r} in the results; they hold "
                                f"{', '.join(outcomes)}")
        rows = crossing_rows(outcomes, args.base)
        table = markdown(rows, args.base)
        if args.out is not None:
            write_report(args.out, args.root,
                         {"root": str(args.root), "results": args.results,
                          "window": args.window, "rows": rows, "outcomes": outcomes}, rows, table)
        return table
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
