"""Train the full-precision SiamFC teacher, the XNOR baseline and RB-SF (RBCN distillation).

With no arguments: the whole chain (teacher -> xnor -> rbsf) with the ``cpu`` preset on
synthetic GOT-10k-layout sequences generated from the shipped photos into ``runs/train/data``.
Each stage writes ``OUT/<stage>/last.pt``, ``log.csv`` and ``loss.png``.

Distributed: ``torchrun --nproc_per_node=N tools/train_rbsf.py ...`` (gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import sys
import time
from pathlib import Path
from typing import Tuple

from rbsf.devices import check_device
from rbsf.train import PRESETS, STAGES, check_chain, preset, resolve_sequences, train_chain
from rbsf.train import distributed as dist
from rbsf.train.config import STAGE_KIND, ConfigError
from tools.cli import ArgumentParser, positive_float, positive_int, run_tool
from tools.train_options import (CORE_OPTIONS, SCHEDULE_OPTIONS, add_ablation_switches,
                                 add_core_overrides, add_run_options, apply_overrides)


def stage_checkpoint(text: str) -> Tuple[str, str]:
    """``--init`` value: ``STAGE=CKPT`` or a bare ``CKPT`` (the teacher's)."""
    stage, sep, path = text.partition("=")
    if sep and stage in STAGES:
        return stage, path
    return "teacher", text


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=STAGES + ("all",), default="all",
                   help="stage to train (default: all = teacher, xnor, rbsf in order)")
    p.add_argument("--preset", choices=PRESETS, default="cpu",
                   help="smoke: seconds, tiny net; cpu: the default chain on a 2-core CPU; "
                        "paper: SiamFC's full GOT-10k setting for a GPU (default: cpu)")
    p.add_argument("--got10k", "--data", dest="root", metavar="ROOT",
                   help="dataset root: GOT-10k (or one of its subsets), OTB or UAV123 layout "
                        "(default: synthetic sequences generated from data/photos)")
    p.add_argument("--subset", default="train", help="GOT-10k subset to train on (default: train)")
    add_run_options(p, "runs/train")
    p.add_argument("--teacher", metavar="CKPT",
                   help="use this full-precision checkpoint (ours or siamfc-pytorch's "
                        "state dict) as the teacher instead of training one")
    p.add_argument("--init", metavar="[STAGE=]CKPT", action="append", type=stage_checkpoint,
                   default=[],
                   help="fine-tune instead of starting afresh: the stage (default teacher) "
                        "starts from this finished checkpoint of its own kind (the teacher: "
                        "ours or siamfc-pytorch's, instead of random weights; xnor= / rbsf=: "
                        "instead of the teacher's weights); repeat for several stages")
    o = add_core_overrides(p, "pairs")
    o.add_argument("--pairs-per-epoch", type=positive_int,
                   help="training pairs per epoch (at least --batch-size per process)")
    o.add_argument("--width", type=positive_float,
                   help="channel width multiplier (1.0 = paper AlexNet)")
    o.add_argument("--negative-pairs", type=float, metavar="SHARE",
                   help="share of pairs (0 to below 1) whose search crop shows another "
                        "sequence's target, labelled negative everywhere (beyond the paper, "
                        "after DaSiamRPN; default 0: SiamFC's pairs only)")
    add_ablation_switches(p, "rbsf")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace):
    """The preset with the options applied, checked (``ConfigError`` names the option)."""
    config = preset(args.preset)
    stages = STAGES if args.stage == "all" else (args.stage,)
    apply_overrides(config, args, stages, CORE_OPTIONS + ("width", "negative_pairs"),
                    SCHEDULE_OPTIONS + ("pairs_per_epoch",))
    for stage, path in args.init:
        if stage in config.init:
            raise ConfigError(f"--init names stage {stage} twice; give one checkpoint per stage")
        config.init[stage] = path
    config.check(stages, dist.launch_size())
    return config, stages


def main(argv=None) -> int:
    args = parse_args(argv)
    config, stages = build_config(args)
    out = Path(args.out)
    teacher = Path(args.teacher) if args.teacher else None
    check_device(args.device)
    checked = check_chain(config, stages, out, teacher, args.resume)
    dist.setup(args.device)
    main_process = dist.is_main()
    started = time.perf_counter()
    try:
        sequences = resolve_sequences(config, args.root, args.subset, out)
        if main_process:
            print(f"training {', '.join(stages)} ({args.preset} preset) on {len(sequences)} "
                  f"sequences -> {out}/", flush=True)
        results = train_chain(config, stages, sequences, out, args.device, teacher,
                              args.resume, args.max_steps, checked)
    finally:
        dist.teardown()
    if main_process:
        minutes = (time.perf_counter() - started) / 60
        for stage, path in results.items():
            print(f"{stage} ({STAGE_KIND[stage]}): {path}")
        print(f"done in {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="rerun with --resume to continue"))
