"""How much of a tracker's loss is its size estimate: the tracker beside itself with the true size.

    python -m experiments.size_oracle --tracker packed --root data/cache/heldout-rendered \\
        --out runs/size-oracle --workers 2

Every sequence is tracked twice with the same weights and settings: as ``tools/eval.py`` does,
and with an oracle that, after each frame, replaces the tracker's size by the ground-truth size
(``SiamFCTracker.set_size``), so that only the centre is the tracker's own. The gap between the
two success AUCs is roughly what better scale estimation could gain (not a bound: a true size
that grows also widens the search, which can take in a distractor); a sequence that fails with
the oracle too fails on its centre (the tracker locks onto something else). Writes
``OUT/size_oracle.json`` and ``OUT/size_oracle.md`` (per sequence and overall).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from tqdm import tqdm

from experiments import add_tracker_options, run_job
from rbsf.data import Sequence, load_sequences
from rbsf.eval.metrics import otb_overall, otb_sequence
from rbsf.eval.runner import process_pool, track_sequence
from rbsf.files import check_writable_dir, write_record
from trackers.registry import (PARAMS_HELP, TrackerFactory, entry, find_weights, params_file,
                               tracker_params)

MODES = ("tracker", "size oracle")


class SizeOracle:
    """A tracker whose size is replaced by the true one after every frame (``update``)."""

    def __init__(self, tracker, truth: np.ndarray):
        self.tracker, self.truth = tracker, truth

    def init(self, image, box) -> None:
        self.tracker.init(image, box)
        self.frame = 0

    def update(self, image) -> np.ndarray:
        self.tracker.update(image)
        self.frame += 1
        truth = self.truth[self.frame]
        if np.all(np.isfinite(truth)) and truth[2] > 0 and truth[3] > 0:
            self.tracker.set_size(truth[2], truth[3])
        return self.tracker.box()


def track(factory: TrackerFactory, sequence: Sequence, oracle: bool) -> np.ndarray:
    """Boxes of one run over ``sequence`` (the evaluation's loop); with ``oracle``, the true
    size after every frame."""
    tracker = factory()
    if oracle:
        tracker = SizeOracle(tracker, sequence.boxes)
    return track_sequence(tracker, sequence.frames, sequence.boxes[0])[0]


def _score(args) -> Dict[str, object]:
    factory, sequence, oracle = args
    return otb_sequence(track(factory, sequence, oracle), sequence.boxes)


def compare(factory: TrackerFactory, sequences: List[Sequence], workers: int) -> dict:
    """Per mode: success / precision / SR0.5 overall and success per sequence."""
    tasks = [(factory, seq, oracle) for oracle in (False, True) for seq in sequences]
    with process_pool(workers) as pool:
        scored = list(tqdm(pool.map(_score, tasks), total=len(tasks), unit="seq"))
    record = {}
    for index, mode in enumerate(MODES):
        per_sequence = scored[index * len(sequences):(index + 1) * len(sequences)]
        overall = otb_overall(per_sequence, [])
        record[mode] = {
            **{key: overall[key] for key in ("success_auc", "precision_20", "sr_50")},
            "per_sequence": {seq.name: s["success_auc"]
                             for seq, s in zip(sequences, per_sequence)}}
    return record


def markdown(record: dict, title: str) -> str:
    names = list(record[MODES[0]]["per_sequence"])
    lines = [f"# {title}", "", "| sequence | " + " | ".join(MODES) + " |", "|---|---|---|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(
            f"{record[mode]['per_sequence'][name]:.3f}" for mode in MODES) + " |")
    for key, label in (("success_auc", "success"), ("precision_20", "precision@20"),
                       ("sr_50", "SR0.5")):
        lines.append(f"| **{label}** | " + " | ".join(
            f"**{record[mode][key]:.3f}**" for mode in MODES) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tracker_options(parser, "sequences with ground truth (OTB or GOT-10k layout)")
    parser.add_argument("--params", help=PARAMS_HELP)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="sequences tracked in parallel")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def job() -> str:
        entry(args.tracker)
        check_writable_dir(args.out, "--out")
        sequences = load_sequences(str(args.root))
        settings = params_file(args.weights_dir, args.params)
        factory = TrackerFactory(args.tracker, str(find_weights(args.tracker, args.weights_dir)),
                                 params=tracker_params(settings, [args.tracker])[args.tracker])
        record = compare(factory, sequences, max(1, args.workers))
        title = (f"{entry(args.tracker).report_name} on {args.root}, settings "
                 f"{settings or 'reference'}: its own size against the true size")
        table = markdown(record, title)
        write_record(args.out, "size_oracle", {"title": title, **record}, table)
        return table
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
