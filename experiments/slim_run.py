"""Copy a training run without what only resuming needs, small enough to travel back from a
lent machine (at most 16 MB a file there; a full AlexNet training checkpoint is 19-22 MB).

    python -m experiments.slim_run RUN OUT

For each stage of ``RUN`` (``tools/train_rbsf.py --out RUN``) that has a ``last.pt``, writes
``OUT/<stage>/last.pt`` (``rbsf.checkpoint.slim_checkpoint``: model and training facts, no
optimiser, discriminator or RNG state; about 9.4 MB) beside a copy of its ``log.csv``: the
layout ``experiments.ship_trained --run OUT`` ships from. A slim copy cannot be resumed.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from experiments import run_job
from rbsf.checkpoint import load_checkpoint, slim_checkpoint, unfinished_note
from rbsf.errors import RBSFError
from rbsf.files import check_writable_dir, same_path, save_atomic
from rbsf.train.config import STAGES
from rbsf.train.logs import training_seconds


class SlimError(RBSFError):
    """A run folder with no stage checkpoint in it."""


def slim_run(run: Path, out: Path) -> List[str]:
    """Write the slim copy of every stage of ``run`` into ``out``; one line per stage copied."""
    stages = [s for s in STAGES if (run / s / "last.pt").is_file()]
    if not stages:
        raise SlimError(f"{run} holds no <stage>/last.pt of {', '.join(STAGES)}; give the "
                        f"--out folder of tools/train_rbsf.py")
    if same_path(out, run):
        raise SlimError(f"OUT {out} is RUN: the slim copies would replace the run's checkpoints; "
                        f"choose another folder")
    check_writable_dir(out, "OUT")
    lines = []
    for stage in stages:
        data = load_checkpoint(run / stage / "last.pt")
        (out / stage).mkdir(parents=True, exist_ok=True)
        save_atomic(slim_checkpoint(data), out / stage / "last.pt")
        if (run / stage / "log.csv").is_file():
            shutil.copyfile(run / stage / "log.csv", out / stage / "log.csv")
        lines.append(f"{stage}: step {data.get('step')}, {unfinished_note(data) or 'finished'}"
                     f"{_rate(data, run / stage / 'log.csv')} -> {out / stage / 'last.pt'}")
    return lines


def _rate(data: dict, log: Path) -> str:
    """", PAIRS pairs in SECONDS s (RATE pairs/s)" of a stage, or "" without its log."""
    pairs, seconds = data.get("budget", {}).get("pairs_seen"), training_seconds(log)
    if not pairs or not seconds:
        return ""
    return f", {pairs} pairs in {seconds:.0f} s ({pairs / seconds:.1f} pairs/s)"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="training output folder (train_rbsf.py --out)")
    parser.add_argument("out", type=Path, help="folder the slim copies go to")
    args = parser.parse_args(argv)
    return run_job(lambda: "\n".join(slim_run(args.run, args.out)))


if __name__ == "__main__":
    sys.exit(main())
