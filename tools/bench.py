"""Speed of the full-precision, float-emulated binary and packed 1-bit SiamFC trackers.

    python tools/bench.py                       # random full-width models (speed only)
    python tools/bench.py --weights data/weights --json
    python tools/bench.py --video clip.mp4 --frames 60 --rounds 5
    python tools/bench.py --conv1 fp32          # the exact packed model only

Reports, measured in one run side by side: full-tracker fps (3 scales, x16 upsampling, the
same frames for every model), backbone milliseconds per 255x255 search image per layer,
model file sizes and peak memory of a process tracking with each model. The packed model runs
once per ``--conv1`` mode: int8 (8-bit conv1, row "packed, int8 conv1", the fastest measured
mode and so the first) and fp32 (exact conv1, row "binary, packed"). The full comparison with
onnxruntime and OpenVINO is ``benchmarks/peers.py``.
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import cv2
from tqdm import tqdm

from experiments.speed import format_report, panned_frames, run, video_frames
from rbsf.checkpoint import CheckpointError
from rbsf.deploy.packed import CONV1_MODES
from tools.cli import ArgumentParser, choose, fail, run_tool

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "data" / "photos" / "baboon.jpg"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Benchmark the fp, float-emulated binary and packed SiamFC trackers.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--weights", type=Path, metavar="DIR",
                        help="folder with siamfc.pt (full precision) and rbsf.pt (binary); "
                             "default: randomly initialised full-width models")
    parser.add_argument("--video", type=Path,
                        help="video to track in (default: frames panned over a shipped photo)")
    parser.add_argument("--box", default="280,200,80,80", metavar="X,Y,W,H",
                        help="initial target box in the first frame")
    parser.add_argument("--frames", type=int, default=31, help="frames per tracking run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per model; the best round is reported")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every model")
    parser.add_argument("--width", type=float, default=1.0,
                        help="channel width of the random models (ignored with --weights)")
    parser.add_argument("--conv1", default="int8,fp32", metavar="MODES",
                        help=f"comma-separated conv1 modes of the packed model, from "
                             f"{', '.join(CONV1_MODES)}; the first is the headline engine "
                             f"(int8: the fastest measured, see BENCHMARKS.md)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory runs (each starts a fresh process)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.frames < 2 or args.rounds < 1 or args.threads < 1 or not 0 < args.width <= 4:
        return fail("--frames must be >= 2, --rounds and --threads >= 1, --width in (0, 4]")
    try:
        box = [float(v) for v in args.box.split(",")]
        assert len(box) == 4 and box[2] > 0 and box[3] > 0
    except (ValueError, AssertionError):
        return fail(f"--box wants X,Y,W,H with positive W and H, got {args.box!r}")
    conv1_modes = choose(args.conv1, CONV1_MODES, "--conv1")
    paths = [None, None]
    if args.weights:
        paths = [args.weights / "siamfc.pt", args.weights / "rbsf.pt"]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            return fail(f"missing {', '.join(missing)}; --weights needs siamfc.pt and rbsf.pt")
    try:
        if args.video:
            frames = video_frames(args.video, args.frames)
        else:
            frames = panned_frames(cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB),
                                   args.frames)
        report = run(frames, box, args.rounds, args.threads, *paths, memory=not args.no_memory,
                     width=args.width, conv1_modes=conv1_modes,
                     progress=lambda it, **kw: tqdm(it, file=sys.stderr, leave=False, **kw))
    except (CheckpointError, ValueError) as exc:
        return fail(str(exc))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
