"""Write synthetic tracking sequences rendered from real photos in a benchmark layout.

Example: python tools/make_synthetic.py --layout got10k --out data/synthetic --sequences 50 --frames 100
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import sys

from rbsf.data.synthetic import LAYOUTS, write_dataset
from tools.cli import (ArgumentParser, fail, non_negative_int, positive_int, run_tool,
                       split_list)


def frame_size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        w = h = 0
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 480x360, got {text!r}")
    return w, h


def main(argv=None) -> int:
    parser = ArgumentParser(
        description="Render synthetic tracking sequences (a target cut from one photo moving over "
                    "another, with camera pan/zoom, occlusion, distractors, blur, noise and "
                    "illumination change) and write them with exact ground truth in a benchmark "
                    "layout.")
    parser.add_argument("--layout", choices=LAYOUTS, default="got10k",
                        help="folder layout: got10k (train/val/test with list.txt, "
                             "groundtruth.txt, absence/cover/cut_by_image labels, meta_info.ini), "
                             "otb (<Name>/img/0001.jpg + groundtruth_rect.txt) or uav123 "
                             "(anno/UAV123 + data_seq/UAV123; sequence lengths fixed by the got10k "
                             "toolkit, --frames ignored) (default: got10k)")
    parser.add_argument("--out", required=True,
                        help="output folder, new or empty; becomes the dataset root")
    parser.add_argument("--sequences", type=positive_int, default=10,
                        help="number of sequences (per subset for got10k) (default: 10)")
    parser.add_argument("--frames", type=positive_int, default=100,
                        help="frames per sequence, at least 2 (default: 100)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="random seed; same seed, same dataset (default: 0)")
    parser.add_argument("--images", default=None,
                        help="folder of photos (.jpg/.png) to cut targets and backgrounds from "
                             "(default: the photos shipped in data/photos)")
    parser.add_argument("--image-names", nargs="+", default=None, metavar="NAME",
                        help="use only these photo file names from --images, e.g. to keep held-out "
                             "photos for a test set (default: all)")
    parser.add_argument("--size", type=frame_size, default=(480, 360), metavar="WxH",
                        help="frame size in pixels, at least 32x32 (default: 480x360; smaller is "
                             "faster, but below it more targets fall under SiamFC's 20-pixel "
                             "training filter)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100 (default: 90)")
    parser.add_argument("--subsets", default="train,val,test",
                        help="got10k layout: comma-separated subsets to write (default: "
                             "train,val,test)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="processes rendering sequences in parallel; the data do not depend "
                             "on it (default: 1)")
    args = parser.parse_args(argv)
    if not 1 <= args.quality <= 100:
        parser.error("--quality must be within 1..100")
    try:
        root = write_dataset(args.out, args.layout, args.sequences, args.frames, args.seed,
                             image_dir=args.images, frame_size=args.size,
                             image_names=args.image_names,
                             quality=args.quality, progress=True,
                             subsets=split_list(args.subsets),
                             workers=args.workers)
    except OSError as err:
        return fail(f"writing the data set failed ({err}); nothing was kept, free space or "
                    f"choose another --out")
    print(f"wrote {args.layout} dataset to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="nothing was kept (a data set is written whole "
                                             "or not at all); rerun the command"))
