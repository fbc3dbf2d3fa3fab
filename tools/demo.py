"""Track one target in a video file or a webcam stream and save what the tracker did.

    python tools/demo.py                                  # the shipped real sample clip
    python tools/demo.py --video clip.mp4 --init-box 120,80,40,60
    python tools/demo.py --webcam 0 --realtime            # draw the box with the mouse

Writes an annotated video (box, tracker name, live fps, frame number) and an OTB box file
(one x,y,w,h line per frame), by default to runs/demo/<video>_<tracker>.mp4 / .txt.
q, Esc or Ctrl-C stop the run; the files written so far are complete. Outputs that are inputs
(video, ground truth, weights), that clash or that cannot be written are refused before any work.
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from rbsf.files import check_outputs
from rbsf.video import (CAMERA_INDICES, BoxOutput, FrameSource, VideoError, VideoOutput, Window,
                        check_box, check_video_path, display_available, parse_box,
                        read_groundtruth_box, select_box, track_video)
from tools.cli import EXIT_INTERRUPTED, ArgumentParser, run_tool
from trackers.registry import (PARAMS_HELP, TRACKERS, build_tracker, find_weights, name_for_weights,
                               params_file, tracker_params, unfinished)
from trackers.siamfc import changed_params

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_VIDEO = ROOT / "data" / "heldout" / "carphone_bowtie.mp4"
SAMPLE_GROUNDTRUTH = ROOT / "data" / "heldout" / "carphone_bowtie_groundtruth.txt"
DEFAULT_TRACKER = "packed-int8"  # the fastest measured; within 0.03 success of exact conv1


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Track one target in a video or webcam stream; writes an annotated video "
                    "and an OTB box file. With no arguments: the shipped sample clip.",
        epilog="q or Esc in the window, or Ctrl-C, stop the run; the video and box file written so "
               "far are complete (exit code 130 after Ctrl-C). Bad input: one error line, "
               "exit code 2.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", type=Path, metavar="PATH",
                        help="video file to track in (default: the sample clip "
                             "data/heldout/carphone_bowtie.mp4, a real video of a red bow tie, "
                             "with its first ground-truth box)")
    source.add_argument("--webcam", type=int, metavar="INDEX",
                        help=f"camera index to track from (0..{CAMERA_INDICES[-1]})")
    parser.add_argument("--init-box", metavar="X,Y,W,H",
                        help="target box in the first frame (top-left x, y, width, height, pixels);"
                             " without it the box is drawn with the mouse (needs a display)")
    parser.add_argument("--groundtruth", type=Path, metavar="PATH",
                        help="take the first box from this OTB ground-truth file "
                             "(line of --start-frame)")
    parser.add_argument("--tracker", choices=list(TRACKERS),
                        help="tracker: full-precision SiamFC, XNOR-Net SiamFC, RB-SF (1-bit, "
                             "emulated in float), packed (RB-SF on the bit-packed CPU engine, "
                             "exact conv1) or packed-int8 (the same with an 8-bit first conv: the "
                             "fastest measured, within 0.03 success of exact conv1 on the held-out "
                             "sets) "
                             "(default: packed-int8, or with "
                             "--weights the tracker of the model the file holds)")
    parser.add_argument("--weights", type=Path, metavar="PATH",
                        help="checkpoint to load (default: data/weights/<tracker>.pt, "
                             "data/weights/rbsf.packed for packed and packed-int8)")
    parser.add_argument("--params", metavar="PATH", help=PARAMS_HELP)
    parser.add_argument("--output", type=Path, metavar="PATH",
                        help="annotated video (.mp4/.avi; default runs/demo/<name>_<tracker>.mp4)")
    parser.add_argument("--boxes", type=Path, metavar="PATH",
                        help="OTB box file, one x,y,w,h line per frame "
                             "(default: --output with .txt)")
    parser.add_argument("--no-display", action="store_true",
                        help="do not open a window (automatic when there is no display)")
    parser.add_argument("--realtime", action="store_true",
                        help="keep up with the source by skipping frames when the tracker is "
                             "slower (skipped frames repeat the last box in the box file; the "
                             "video holds the processed frames)")
    parser.add_argument("--start-frame", type=int, default=0,
                        help="first frame (0-based) of a video file (default: 0)")
    parser.add_argument("--max-frames", type=int,
                        help="stop after this many source frames (default: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.start_frame < 0:
        parser.error("--start-frame must be >= 0")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error("--max-frames must be >= 1")
    if args.webcam is not None and args.start_frame:
        parser.error("--start-frame applies to --video only")
    if args.webcam is not None and args.webcam not in CAMERA_INDICES:
        parser.error(f"--webcam takes a camera index 0..{CAMERA_INDICES[-1]}, got {args.webcam}")
    return args


def resolve_paths(args: argparse.Namespace) -> None:
    """Fill in the defaults: the sample clip and its ground truth, the tracker's shipped
    weights, runs/demo/<name>_<tracker>.mp4 and the box file beside it."""
    if args.video is None and args.webcam is None:
        if not SAMPLE_VIDEO.is_file():
            raise VideoError(f"the sample clip {SAMPLE_VIDEO} is missing; "
                             "pass --video PATH or --webcam 0")
        args.video = SAMPLE_VIDEO
        if args.init_box is None and args.groundtruth is None:
            args.groundtruth = SAMPLE_GROUNDTRUTH
    if args.tracker is None:
        args.tracker = name_for_weights(args.weights) if args.weights else DEFAULT_TRACKER
    args.weights = args.weights or find_weights(args.tracker)
    args.params_file = params_file(args.weights.parent, args.params)
    stem = args.video.stem if args.video is not None else f"webcam{args.webcam}"
    args.output = args.output or Path("runs") / "demo" / f"{stem}_{args.tracker}.mp4"


def check_paths(args: argparse.Namespace) -> Path:
    """Refuse outputs that are inputs, clash or cannot be written; returns the box file."""
    check_video_path(args.output)
    boxes = args.boxes or args.output.with_suffix(".txt")
    boxes_label = "--boxes" if args.boxes else "--boxes (default: --output with .txt)"
    check_outputs({"--output": args.output, boxes_label: boxes},
                  {"input video": args.video, "--groundtruth file": args.groundtruth,
                   "--weights file": args.weights, "--params file": args.params_file})
    return boxes


def open_source(args: argparse.Namespace) -> FrameSource:
    if args.webcam is not None:
        return FrameSource.open_camera(args.webcam)
    return FrameSource.open_file(args.video, args.start_frame)


def initial_box(args: argparse.Namespace, source: FrameSource, display: bool):
    if args.init_box is not None:
        box = parse_box(args.init_box)
    elif args.groundtruth is not None:
        box = read_groundtruth_box(args.groundtruth, args.start_frame)
    elif display:
        box = select_box(source.first)
    else:
        raise VideoError("no initial box and no display to draw one: pass --init-box x,y,w,h")
    return check_box(box, source.width, source.height)


def run(args: argparse.Namespace) -> int:
    resolve_paths(args)
    boxes = check_paths(args)
    params = tracker_params(args.params_file, [args.tracker])[args.tracker]
    display = not args.no_display and display_available()
    source = open_source(args)
    try:
        box = initial_box(args, source, display)
        tracker = build_tracker(args.tracker, args.weights, params=params)
        note = unfinished(args.weights)
        if note:
            print(f"warning: {args.weights} is not a finished model ({note})", file=sys.stderr)
        video_out = VideoOutput(args.output, source.fps)
        box_out = BoxOutput(boxes)
        window = Window(f"RB-SF demo: {tracker.name}") if display else None
        try:
            result = track_video(tracker, source, box, name=tracker.name, video_out=video_out,
                                 box_out=box_out, window=window, realtime=args.realtime,
                                 max_frames=args.max_frames, progress=not args.quiet)
        finally:
            video_out.close()
            box_out.close()
            if window is not None:
                window.close()
    finally:
        source.close()
    skipped = f", skipped {result.skipped} to keep up" if args.realtime else ""
    print(f"{tracker.name} on {source.name}: {result.tracked} frames tracked{skipped}; "
          f"tracker {result.track_fps:.1f} fps, overall {result.loop_fps:.1f} fps; "
          f"{result.stopped}")
    print(f"video: {video_out.path.resolve()} ({video_out.frames} frames)")
    print(f"boxes: {box_out.path.resolve()} ({box_out.lines} lines)")
    changed = ", ".join(f"{k}={v:g}" for k, v in changed_params(tracker.params).items())
    values = f"{changed}; the rest SiamFC's reference values" if changed else "SiamFC's values"
    print(f"settings: {args.params_file or 'reference'} ({values})")
    return EXIT_INTERRUPTED if result.stopped.startswith("interrupted") else 0


def main(argv: Optional[List[str]] = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="stopped before tracking started"))
