"""Tune a tracker's SiamFC settings (motion prediction, the distractor model, the DSST scale
filter, number of scales, scale step, rate, penalty and bias, template update rate, the
exemplar's context, window influence, the feature filter) on validation sequences, by
coordinate descent over ``GRID`` from the reference values (or from a settings file,
``--start``; over some of the fields, ``--fields``): a setting is taken only when it adds
``MIN_GAIN`` success or more.

    python tools/prepare_data.py val --out data/cache/val-rendered
    python -m experiments.tune_tracker --tracker packed --root data/cache/val-rendered \\
        --out runs/tune-packed --workers 2
    python -m experiments.tune_tracker --tracker packed --root data/cache/tuning-rendered \\
        --out runs/tune-more --start data/weights/tracking.json --fields window_influence,motion_lr

Tune on sequences no evaluation uses, never on a held-out or benchmark set: renders of the
tuning split (``prepare_data.py tuning``) for weights trained with ``--reserve-tuning``, else new
renders of the training sources (``prepare_data.py val``). Each trial's results go to
``OUT/results/custom/<trial>/``, so a rerun skips what is finished; after every trial
``OUT/tuning.json`` and ``OUT/tuning.md`` are rewritten (every trial and its scores) and
``OUT/params.json`` holds the best settings so far (every searched field, and the others that
differ from the reference), the file ``--params`` of ``tools/eval.py`` and ``tools/demo.py``
reads.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from experiments import add_tracker_options, run_job
from rbsf.data import load_sequences
from rbsf.eval.report import score_otb
from rbsf.eval.runner import make_jobs, run_jobs
from rbsf.files import atomic_open, check_writable_dir, write_record
from tools.cli import choose
from trackers.registry import TrackerFactory, entry, find_weights, tracker_params
from trackers.siamfc import TrackerParams, changed_params

GRID: Dict[str, Tuple[float, ...]] = {          # searched in this order, one field at a time
    "motion_lr": (0.0, 0.3, 0.7),
    "distractor_weight": (0.0, 0.5, 1.0),
    "scale_filter_lr": (0.0, 0.025, 0.05),
    "scale_num": (1, 3, 5),
    "scale_step": (1.0375, 1.06, 1.09),
    "scale_filter_step": (1.01, 1.02, 1.03),
    "scale_lr": (0.35, 0.59, 0.8),
    "scale_penalty": (0.94, 0.9745, 0.99),
    "scale_bias": (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0),
    "template_lr": (0.0, 0.01, 0.03),
    "exemplar_context": (0.0, 0.25, 0.5, 1.0),
    "window_influence": (0.1, 0.176, 0.25, 0.35, 0.45),
    "feature_filter_weight": (0.0, 0.5, 1.0, 2.0),
    "feature_filter_lr": (0.005, 0.01, 0.03),
    "feature_filter_sigma": (0.5, 1.0, 2.0),
    "color_weight": (0.0, 0.2, 0.35, 0.5),
    "color_lr": (0.01, 0.04, 0.1),
}
MIN_GAIN = 0.005     # success a setting must add to be taken: smaller gains are noise here
SCORES = ("success_auc", "precision_20", "sr_50")


def trial_name(params: TrackerParams) -> str:
    """A folder name that spells out the settings that differ from the reference."""
    changed = changed_params(params)
    return "-".join(f"{field}={value:g}" for field, value in changed.items()) or "reference"


def searched(params: TrackerParams) -> Dict[str, float]:
    return {field: getattr(params, field) for field in GRID}


def write_outputs(out: Path, tracker: str, weights: Path, root: Path,
                  trials: List[dict], best: dict) -> None:
    """tuning.json, tuning.md and params.json (the best settings), each written atomically."""
    record = {"tracker": tracker, "weights": str(weights), "root": str(root),
              "objective": "success_auc", "grid": GRID, "trials": trials, "best": best}
    lines = [f"# Tracker settings of {tracker} tuned on {root}", "",
             "| " + " | ".join(GRID) + " | success | precision | SR0.5 |",
             "|" + "---|" * (len(GRID) + 3)]
    for trial in trials:
        mark = "**" if trial is best else ""
        cells = [f"{trial['params'][f]:g}" for f in GRID]
        cells += [f"{mark}{trial[s]:.3f}{mark}" for s in SCORES]
        lines.append("| " + " | ".join(cells) + " |")
    write_record(out, "tuning", record, "\n".join(lines) + "\n")
    with atomic_open(out / "params.json") as handle:
        json.dump({**best["settings"], **best["params"]}, handle, indent=2)


def tune(tracker: str, weights: Path, root: Path, out: Path, workers: int,
         passes: int = 1, start: TrackerParams = TrackerParams(),
         fields: Sequence[str] = tuple(GRID)) -> dict:
    """Coordinate descent from ``start`` over the ``fields`` of ``GRID``, at most ``passes``
    times over every field (it stops after a pass that changes nothing); returns the best
    trial."""
    sequences = load_sequences(str(root))
    result_dir = out / "results" / "custom"
    trials: Dict[str, dict] = {}

    def evaluate(params: TrackerParams) -> dict:
        name = trial_name(params)
        if name not in trials:
            factory = TrackerFactory(tracker, str(weights), report_name=name, params=params)
            jobs = make_jobs({name: factory}, sequences, result_dir)
            with tqdm(total=len(jobs), desc=name, unit="seq", leave=False) as bar:
                run_jobs(jobs, workers, progress=lambda seq: bar.update(1))
            scores = score_otb(result_dir, name, sequences)
            trials[name] = {"params": searched(params), "settings": changed_params(params),
                            **{s: scores[s] for s in SCORES}}
        return trials[name]

    best_params = start
    best = evaluate(best_params)
    for round in range(1, passes + 1):
        before = best_params
        for field in fields:
            for value in GRID[field]:
                candidate = dataclasses.replace(best_params, **{field: value})
                trial = evaluate(candidate)
                if trial["success_auc"] >= best["success_auc"] + MIN_GAIN:
                    best, best_params = trial, candidate
                write_outputs(out, tracker, weights, root, list(trials.values()), best)
            print(f"pass {round}, {field}: {getattr(best_params, field):g} "
                  f"(success {best['success_auc']:.3f})")
        if best_params == before:
            break
    return best


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tracker_options(parser, "validation sequences (OTB or GOT-10k layout)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (a rerun continues in it)")
    parser.add_argument("--workers", type=int, default=1, help="sequences tracked in parallel")
    parser.add_argument("--passes", type=int, default=1,
                        help="passes over the settings (a pass that changes nothing ends it)")
    parser.add_argument("--start", type=Path,
                        help="settings file to start from, e.g. data/weights/tracking.json (the "
                             "tracker's own per_tracker settings where it has some; default: "
                             "SiamFC's reference values)")
    parser.add_argument("--fields", default=",".join(GRID),
                        help="comma-separated settings to search, in this order")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def job() -> str:
        entry(args.tracker)
        weights = find_weights(args.tracker, args.weights_dir)
        fields = choose(args.fields, list(GRID), "--fields")
        start = (TrackerParams() if args.start is None
                 else tracker_params(args.start, [args.tracker])[args.tracker])
        check_writable_dir(args.out, "--out")
        best = tune(args.tracker, weights, args.root, args.out, max(1, args.workers),
                    max(1, args.passes), start, fields)
        return (f"best: {best['params']} success {best['success_auc']:.3f}; "
                f"wrote {args.out}/params.json")
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
