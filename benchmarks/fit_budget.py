"""The training budget that fits a time limit: the ``--pairs-scale`` of ``tools/reproduce.py``.

Measures on this machine and ``--device``, with the preset's real data loaders: the step rate of
the teacher, XNOR and full RB-SF stages, each stage's per-epoch extra time (loader start, BN
update, checkpoint, loss plot), data generation and tracking speed. Then it solves

    minutes * 60 = data + seeds * (fixed + scale * training)
    fixed = tracking + sum over the runs of epochs * extra;  training = sum of pairs / rate

for ``scale`` (the RB-SF variants are timed as full RB-SF, an upper bound; the JSON holds
every term, so another time limit needs no new measurement). Usage:

    python benchmarks/fit_budget.py --preset gpu --device cuda --minutes 6 --seeds 3 --json
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict

import numpy as np

from experiments.reproduce import DATA_PLANS, FULL_DATA, RUNS
from rbsf.data import load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.devices import check_device
from rbsf.eval.runner import read_frame
from rbsf.train import Trainer, preset
from trackers.siamfc import SiamFCTracker

SAMPLE_SEQUENCES = 8   # at least; one per core where there are more


def time_stage(config, stage: str, sequences, out: Path, device: str, teacher, steps: int) -> Dict:
    """Train ``stage`` for two epochs of ``steps`` mini-batches; step seconds and epoch extras."""
    config = type(config).from_dict(config.to_dict())
    config.stages[stage].epochs = 2
    config.stages[stage].pairs_per_epoch = steps * config.batch_size
    trainer = Trainer(config, stage, sequences, out, device, teacher, show_progress=False)
    started = time.perf_counter()
    trainer.run()
    wall = time.perf_counter() - started
    with open(trainer.log.path, newline="") as handle:
        elapsed = [float(row["elapsed_s"]) for row in csv.DictReader(handle)]
    intervals = [b - a for i, (a, b) in enumerate(zip(elapsed, elapsed[1:])) if i + 1 != steps]
    step = statistics.median(intervals)
    return {"seconds_per_step": step, "pairs_per_second": config.batch_size / step,
            "extra_seconds_per_epoch": max(0.0, (wall - 2 * steps * step) / 2),
            "model": trainer.model}


def time_tracking(model, sequence, device: str, frames: int) -> float:
    """Seconds per tracked frame (frame reading included) of ``model`` on ``device``."""
    tracker = SiamFCTracker(model, device=device)
    tracker.init(read_frame(sequence.frames[0]), sequence.boxes[0])
    started = time.perf_counter()
    for path in sequence.frames[1:frames + 1]:
        tracker.update(read_frame(path))
    return (time.perf_counter() - started) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gpu", help="training preset of the reproduction")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--minutes", type=float, required=True,
                        help="time the reproduction may take")
    parser.add_argument("--seeds", type=int, default=1, help="seeds the reproduction trains")
    parser.add_argument("--steps", type=int, default=30, help="timed mini-batches per epoch")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--given-teacher", action="store_true",
                        help="the reproduction runs with --teacher: no teacher training to fit")
    args = parser.parse_args()
    check_device(args.device)
    config = preset(args.preset)
    plan = DATA_PLANS.get(args.preset, FULL_DATA)
    workers = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        count = max(SAMPLE_SEQUENCES, workers)
        root = write_dataset(Path(tmp) / "data", "got10k", count, plan.train_frames, 0,
                             frame_size=plan.frame_size, subsets=("train",), workers=workers)
        per_sequence = (time.perf_counter() - started) / count
        sequences = load_sequences(str(root), "train")
        stages = {"teacher": time_stage(config, "teacher", sequences, Path(tmp), args.device,
                                        None, args.steps)}
        teacher = stages["teacher"]["model"].cpu()
        for stage in ("xnor", "rbsf"):
            stages[stage] = time_stage(config, stage, sequences, Path(tmp), args.device, teacher,
                                       args.steps)
        frame_seconds = max(time_tracking(stages[s]["model"], sequences[0], args.device, 20)
                            for s in ("teacher", "rbsf"))

    data_seconds = per_sequence * (plan.train_sequences + plan.test_sequences)
    fixed, variable = 0.0, 0.0
    for run in RUNS:
        if args.given_teacher and run.stage == "teacher":
            continue
        measured = stages[run.stage]
        schedule = config.stage(run.stage)
        fixed += schedule.epochs * measured["extra_seconds_per_epoch"]
        variable += schedule.epochs * schedule.pairs_per_epoch / measured["pairs_per_second"]
    tracking = len(RUNS) * plan.test_sequences * plan.test_frames * frame_seconds
    available = args.minutes * 60 - data_seconds - args.seeds * (fixed + tracking)
    scale = available / (args.seeds * variable) if available > 0 else 0.0
    result = {
        "preset": args.preset, "device": args.device, "seeds": args.seeds, "minutes": args.minutes,
        "given_teacher": args.given_teacher,
        "stages": {s: {k: v for k, v in m.items() if k != "model"} for s, m in stages.items()},
        "tracking_seconds_per_frame": frame_seconds, "data_seconds": data_seconds,
        "fixed_seconds_per_seed": fixed + tracking,
        "training_seconds_per_seed_at_scale_1": variable,
        "seconds_per_seed_at_scale_1": fixed + variable + tracking,
        "pairs_scale": float(np.round(scale, 3)),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for stage, m in result["stages"].items():
        print(f"{stage:8s} {m['pairs_per_second']:7.1f} pairs/s, "
              f"{m['extra_seconds_per_epoch']:.1f} s extra per epoch")
    print(f"tracking {frame_seconds * 1000:.1f} ms/frame, data {data_seconds:.0f} s, "
          f"{result['seconds_per_seed_at_scale_1'] / 60:.1f} min per seed at scale 1")
    print(f"--pairs-scale {result['pairs_scale']} fits {args.seeds} seed(s) of the {args.preset} "
          f"preset into {args.minutes:g} min" if scale > 0 else
          f"the fixed costs alone exceed {args.minutes:g} min: no scale fits")


if __name__ == "__main__":
    main()
