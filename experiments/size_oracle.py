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
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from tqdm import tqdm

from experiments import add_tracker_options, run_job, write_record
from rbsf.data import Sequence, load_sequences
from rbsf.eval.metrics import otb_overall, otb_sequence
from rbsf.eval.runner import read_frame
from rbsf.files import check_writable_dir
from trackers.registry import TrackerFactory, entry, find_weights, params_file, tracker_params

MODES = ("tracker", "size oracle")


def track(factory: TrackerFactory, sequence: Sequence, oracle: bool) -> np.ndarray:
    """Boxes of one run over ``sequence``; with ``oracle``, the true size after every frame."""
    tracker = factory()
    boxes = [sequence.boxes[0]]
    tracker.init(read_frame(sequence.frames[0]), sequence.boxes[0])
    for frame, truth in zip(sequence.frames[1:], sequence.boxes[1:]):
        box = tracker.update(read_frame(frame))
        if oracle and np.all(np.isfinite(truth)) and truth[2] > 0 and truth[3] > 0:
            tracker.set_size(truth[2], truth[3])
            box = np.array([*(tracker.center - (tracker.target_size - 1) / 2.0),
                            *tracker.target_size])
        boxes.append(box)
    return np.array(boxes)


def _score(args) -> Dict[str, object]:
    factory, sequence, oracle = args
    return otb_sequence(track(factory, sequence, oracle), sequence.boxes)


def compare(factory: TrackerFactory, sequences: List[Sequence], workers: int) -> dict:
    """Per mode: success / precision / SR0.5 overall and success per sequence."""
    tasks = [(factory, seq, oracle) for oracle in (False, True) for seq in sequences]
    threads = max(1, (os.cpu_count() or 1) // workers)      # as tools/eval.py's workers
    with ProcessPoolExecutor(workers, initializer=torch.set_num_threads,
                             initargs=(threads,)) as pool:
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
    parser.add_argument("--params", help="tracker settings JSON or 'reference' (default: "
                        "tracking.json beside the weights)")
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
                                 params=tracker_params(settings))
        record = compare(factory, sequences, max(1, args.workers))
        title = (f"{entry(args.tracker).report_name} on {args.root}, settings "
                 f"{settings or 'reference'}: its own size against the true size")
        table = markdown(record, title)
        write_record(args.out, "size_oracle", {"title": title, **record}, table)
        return table
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
