"""Tracker speed on CPU (fp vs binary kinds, full-width SiamFC, 3 scales) and evaluation wall
time with ``--workers 2`` against ``--workers 1``, measured side by side in one run.

    python benchmarks/bench_eval.py [--frames 20] [--sequences 4] [--seq-frames 12]

The binary kinds run here as float convolutions of +-1 values (the training form); the packed
1-bit engine is measured by the deploy benchmarks.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rbsf.checkpoint import model_payload
from rbsf.data.synthetic import list_photos, load_photos, render_sequence, write_dataset
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from rbsf.models.siamfc import MODEL_NAMES
from trackers import SiamFCTracker

REPO = Path(__file__).resolve().parents[1]


def tracker_fps(kind: str, frames, box) -> float:
    """Frames per second of ``update`` (init excluded) of a full-width tracker of ``kind``."""
    torch.manual_seed(0)
    tracker = SiamFCTracker(SiamFCNet(kind, width=1.0), MODEL_NAMES[kind])
    tracker.init(frames[0], box)
    tracker.update(frames[1])  # warm-up
    start = time.perf_counter()
    for frame in frames[2:]:
        tracker.update(frame)
    return (len(frames) - 2) / (time.perf_counter() - start)


def eval_wall_time(root: Path, weights: Path, out: Path, workers: int) -> float:
    """Seconds of one ``tools/eval.py`` run on ``root`` with ``workers`` processes."""
    cmd = [sys.executable, str(REPO / "tools" / "eval.py"), "--dataset", "custom", "--root",
           str(root), "--trackers", "rbsf", "--weights-dir", str(weights), "--workers",
           str(workers), "--result-dir", str(out / "results"), "--report-dir", str(out / "reports")]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per tracker-speed run")
    parser.add_argument("--sequences", type=int, default=4, help="sequences in the eval run")
    parser.add_argument("--seq-frames", type=int, default=12, help="frames per eval sequence")
    parser.add_argument("--width", type=float, default=0.5, help="model width in the eval run")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    rendered = list(render_sequence(rng, load_photos(list_photos()), args.frames, (480, 360)))
    frames = [r.image for r in rendered]
    box = rendered[0].box
    print(f"torch threads: {torch.get_num_threads()}; frames 480x360, {args.frames} per run")
    fps = {kind: tracker_fps(kind, frames, box) for kind in ("fp", "xnor", "rbconv")}
    for kind, value in fps.items():
        print(f"{MODEL_NAMES[kind]:8s} full width, 3 scales: {value:6.2f} fps "
              f"({value / fps['fp']:.2f} x fp)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = write_dataset(str(tmp / "otb"), "otb", args.sequences, args.seq_frames, seed=0,
                             frame_size=(320, 240))
        torch.manual_seed(0)
        save_atomic(model_payload(SiamFCNet("rbconv", width=args.width)), tmp / "w" / "rbsf.pt")
        one = eval_wall_time(root, tmp / "w", tmp / "one", 1)
        two = eval_wall_time(root, tmp / "w", tmp / "two", 2)
    print(f"eval of {args.sequences} sequences x {args.seq_frames} frames (RB-SF, width "
          f"{args.width}): --workers 1 {one:.1f} s, --workers 2 {two:.1f} s, "
          f"speed-up {one / two:.2f} x")


if __name__ == "__main__":
    main()
