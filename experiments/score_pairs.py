"""Pair scores of the trained nets on sequences of your choice: the nets apart from the tracker.

    python -m experiments.score_pairs --root data/cache/heldout-rendered \\
        --root data/cache/heldout-real --out runs/pair-scores

For every ``--root`` (OTB or GOT-10k layout) the teacher, XNOR-SF and RB-SF of
``--weights-dir`` see the same fixed pairs (``rbsf.eval.pair_scores``): the balanced task loss
on them (lower is better) and each net's feature similarity to the teacher. A tracking score
also depends on the tracker's scale and window settings and moves by 0.05 when one sequence of
twelve is lost; the pair loss measures how well each net separates the target from its
surroundings with far less noise. Writes ``OUT/pair_scores.json`` and ``OUT/pair_scores.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

from experiments import run_job
from rbsf.checkpoint import load_model
from rbsf.data import load_sequences
from rbsf.eval.pair_scores import held_out_pairs, pair_scores
from rbsf.files import check_writable_dir, write_record
from trackers.registry import SHIPPED_WEIGHTS, entry, find_weights

NETS = ("siamfc", "xnor", "rbsf")    # registry names; the first is the teacher


def score_roots(roots: List[Path], weights_dir: Path, pairs: int) -> Dict[str, dict]:
    """Per root: per net (by report name) its pair loss and teacher similarity."""
    sequences = {str(root): load_sequences(str(root)) for root in roots}
    nets = {entry(name).report_name: load_model(find_weights(name, weights_dir))
            for name in NETS}
    teacher = nets[entry(NETS[0]).report_name]
    return {root: pair_scores(nets, held_out_pairs(found, pairs), teacher=teacher)
            for root, found in sequences.items()}


def markdown(scores: Dict[str, dict], weights_dir: Path, pairs: int) -> str:
    names = list(next(iter(scores.values())))
    lines = [f"# Pair scores of {weights_dir} ({pairs} fixed pairs per root)", "",
             "pair loss (lower is better) / feature similarity to the teacher", "",
             "| root | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for root, per_net in scores.items():
        cells = [f"{per_net[n]['pair_loss']:.3f} / {per_net[n]['teacher_similarity']:.2f}"
                 for n in names]
        lines.append(f"| {root} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, action="append", required=True,
                        help="sequences to draw pairs from (repeat for several sets)")
    parser.add_argument("--weights-dir", type=Path, default=SHIPPED_WEIGHTS,
                        help="folder with siamfc.pt, xnor.pt and rbsf.pt (default: data/weights)")
    parser.add_argument("--pairs", type=int, default=160, help="pairs per root (default: 160)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def job() -> str:
        check_writable_dir(args.out, "--out")
        scores = score_roots(args.root, args.weights_dir, max(1, args.pairs))
        table = markdown(scores, args.weights_dir, args.pairs)
        write_record(args.out, "pair_scores", {"weights_dir": str(args.weights_dir),
                                               "pairs": args.pairs, "scores": scores}, table)
        return table
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
