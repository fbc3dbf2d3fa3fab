"""Goals of the packed 1-bit engine, measured side by side in one run (tools/bench.py's report):

* packed RB-SF tracker fps >= 4x the full-precision tracker's (stretch: >= 8x);
* packed model file <= 0.5 MB for the full-width AlexNet.

    python benchmarks/bench_deploy.py [--frames 31] [--rounds 5] [--threads 2]

Random full-width models (speed does not depend on the weights); "packed-int8" is the packed
model with its opt-in 8-bit conv1. On a machine shared with other
jobs the wall-clock ratio moves with the load: each model's best of several interleaved rounds
is used, and a single-thread run (--threads 1) is the steadiest reading.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from tqdm import tqdm

from experiments.speed import format_report, panned_frames, run

PHOTO = Path(__file__).resolve().parents[1] / "data" / "photos" / "baboon.jpg"
FPS_GOAL, FPS_STRETCH, SIZE_GOAL = 4.0, 8.0, 500_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--frames", type=int, default=31, help="frames per tracking run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per model")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every model")
    args = parser.parse_args()
    frames = panned_frames(cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB), args.frames)
    report = run(frames, [280, 200, 80, 80], args.rounds, args.threads, memory=False,
                 progress=lambda it, **kw: tqdm(it, leave=False, **kw))
    print(format_report(report), "\n")
    for name in ("packed", "packed-int8"):
        ratio = report["speedup_vs_fp"][name]
        verdict = ("stretch met" if ratio >= FPS_STRETCH else "met" if ratio >= FPS_GOAL
                   else "MISSED")
        print(f"{name} / fp tracker fps: {ratio:.2f}x (goal >= {FPS_GOAL:g}x, stretch "
              f">= {FPS_STRETCH:g}x): {verdict}")
    size = report["file_bytes"]["packed"]
    print(f"packed file: {size / 1e6:.3f} MB (goal <= {SIZE_GOAL / 1e6:g} MB): "
          f"{'met' if size <= SIZE_GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
