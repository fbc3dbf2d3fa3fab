"""Training speed per stage: pairs/s of one training step (full SiamFC, 127/239, batch 8) for
the teacher, XNOR and RB-SF stages, and the cost of an RB-SF step relative to an XNOR step.

Stages are timed in interleaved rounds on the same mini-batches (data loading excluded), so
the ratios come from one run on one machine state. Usage: python benchmarks/bench_train.py
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from rbsf.data import load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.models import SiamFCNet
from rbsf.train import Trainer, preset

STAGES = ("teacher", "xnor", "rbsf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--width", type=float, default=1.0, help="channel width (1.0 = paper)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(tmp, "got10k", 2, 20, seed=0, frame_size=(320, 240))
        sequences = load_sequences(str(root), "train")
        config = preset("cpu")
        config.width = args.width
        teacher = SiamFCNet("fp", width=args.width)
        trainers = {s: Trainer(config, s, sequences, Path(tmp) / "out",
                               teacher=None if s == "teacher" else teacher, show_progress=False)
                    for s in STAGES}
        z, x = next(iter(trainers["teacher"]._loader(trainers["teacher"].pairs, 0)))
        for trainer in trainers.values():
            trainer.train_step(z, x)  # warm-up
        seconds = {s: [] for s in STAGES}
        for _ in range(args.rounds):
            for stage, trainer in trainers.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step(z, x)
                seconds[stage].append((time.perf_counter() - start) / args.steps)
    best = {s: min(v) for s, v in seconds.items()}
    result = {
        "batch_size": config.batch_size, "width": args.width, "threads": torch.get_num_threads(),
        "seconds_per_step": best,
        "pairs_per_second": {s: config.batch_size / t for s, t in best.items()},
        "rbsf_over_xnor_step_cost": best["rbsf"] / best["xnor"],
        "xnor_over_teacher_step_cost": best["xnor"] / best["teacher"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"training step, batch {config.batch_size}, 127/239, width {args.width}, "
          f"{result['threads']} threads (best of {args.rounds} rounds x {args.steps} steps)")
    for stage in STAGES:
        print(f"  {stage:8s} {best[stage]:6.2f} s/step  {result['pairs_per_second'][stage]:5.1f} pairs/s")
    print(f"  rbsf step / xnor step:    {result['rbsf_over_xnor_step_cost']:.2f}x")
    print(f"  xnor step / teacher step: {result['xnor_over_teacher_step_cost']:.2f}x")


if __name__ == "__main__":
    main()
