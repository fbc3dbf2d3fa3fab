"""Training speed per stage and precision: seconds per training step (full SiamFC, 127/239,
batch 8) of the teacher, XNOR and RB-SF stages in fp32 and in bf16 (``--precision bf16`` of
the training tools), and the ratios between them.

Every (stage, precision) is timed in interleaved rounds on the same mini-batch (data loading
excluded), so the ratios come from one run on one machine state. Usage:
python benchmarks/bench_train.py [--threads 1]
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
from rbsf.train.config import PRECISIONS

STAGES = ("teacher", "xnor", "rbsf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--width", type=float, default=1.0, help="channel width (1.0 = paper)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(tmp, "got10k", 2, 20, seed=0, frame_size=(320, 240))
        sequences = load_sequences(str(root), "train")
        teacher = SiamFCNet("fp", width=args.width)
        trainers = {}
        for precision in PRECISIONS:
            config = preset("cpu")
            config.width = args.width
            config.precision = precision
            for stage in STAGES:
                trainers[stage, precision] = Trainer(
                    config, stage, sequences, Path(tmp) / precision,
                    teacher=None if stage == "teacher" else teacher, show_progress=False)
        first = trainers["teacher", "fp32"]
        batch = next(iter(first._loader(first.pairs, 0)))
        for trainer in trainers.values():
            trainer.train_step(batch)  # warm-up
        seconds = {key: [] for key in trainers}
        for _ in range(args.rounds):
            for key, trainer in trainers.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    trainer.train_step(batch)
                seconds[key].append((time.perf_counter() - start) / args.steps)
    best = {f"{stage}/{precision}": min(seconds[stage, precision]) for stage, precision in seconds}
    batch_size = first.cfg.batch_size
    result = {
        "batch_size": batch_size, "width": args.width, "threads": torch.get_num_threads(),
        "seconds_per_step": best,
        "pairs_per_second": {key: batch_size / t for key, t in best.items()},
        "fp32_over_bf16_step_cost": {s: best[f"{s}/fp32"] / best[f"{s}/bf16"] for s in STAGES},
        "rbsf_over_xnor_step_cost": {p: best[f"rbsf/{p}"] / best[f"xnor/{p}"]
                                     for p in PRECISIONS},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"training step, batch {batch_size}, 127/239, width {args.width}, "
          f"{result['threads']} threads (best of {args.rounds} rounds x {args.steps} steps)")
    for stage in STAGES:
        cells = "  ".join(f"{p} {best[f'{stage}/{p}']:5.2f} s/step "
                          f"({result['pairs_per_second'][f'{stage}/{p}']:5.1f} pairs/s)"
                          for p in PRECISIONS)
        print(f"  {stage:8s} {cells}  fp32/bf16 {result['fp32_over_bf16_step_cost'][stage]:.2f}x")
    for p in PRECISIONS:
        print(f"  rbsf step / xnor step ({p}): {result['rbsf_over_xnor_step_cost'][p]:.2f}x")


if __name__ == "__main__":
    main()
