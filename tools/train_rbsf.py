"""Train the full-precision SiamFC teacher, the XNOR baseline and RB-SF (RBCN distillation).

With no arguments: the whole chain (teacher -> xnor -> rbsf) with the ``cpu`` preset on
synthetic GOT-10k-layout sequences generated from the shipped photos into ``runs/train/data``.
Each stage writes ``OUT/<stage>/last.pt``, ``log.csv`` and ``loss.png``.

Distributed: ``torchrun --nproc_per_node=N tools/train_rbsf.py ...`` (gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rbsf.devices import check_device
from rbsf.discriminator import GENERATOR_LOSSES
from rbsf.train import PRESETS, STAGES, check_chain, preset, resolve_sequences, train_chain
from rbsf.train import distributed as dist
from rbsf.train.config import STAGE_KIND
from tools.cli import (ArgumentParser, non_negative_float, non_negative_int, positive_float,
                       positive_int, run_tool)


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=STAGES + ("all",), default="all",
                   help="stage to train (default: all = teacher, xnor, rbsf in order)")
    p.add_argument("--preset", choices=PRESETS, default="cpu",
                   help="smoke: seconds, tiny net; cpu: the default chain on a 2-core CPU; "
                        "paper: SiamFC's full GOT-10k setting for a GPU (default: cpu)")
    p.add_argument("--got10k", "--data", dest="root", metavar="ROOT",
                   help="dataset root: GOT-10k (or one of its subsets), OTB or UAV123 layout "
                        "(default: synthetic sequences generated from data/photos)")
    p.add_argument("--subset", default="train", help="GOT-10k subset to train on (default: train)")
    p.add_argument("--out", default="runs/train", help="output folder (default: runs/train)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out with the same settings and data "
                        "(finished stages are skipped; after a NaN stop the learning rates and "
                        "lambdas may change)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--teacher", metavar="CKPT",
                   help="use this full-precision checkpoint (ours or siamfc-pytorch's "
                        "state dict) as the teacher instead of training one")
    p.add_argument("--max-steps", type=positive_int,
                   help="stop (and save) after this many steps in total; --resume continues")
    o = p.add_argument_group("overrides of the preset (apply to the stages being trained)")
    o.add_argument("--epochs", type=positive_int, help="epochs per stage")
    o.add_argument("--pairs-per-epoch", type=positive_int,
                   help="training pairs per epoch (at least --batch-size per process)")
    o.add_argument("--batch-size", type=positive_int, help="pairs per mini-batch (per process)")
    o.add_argument("--lr", type=positive_float, help="initial learning rate (eta1) of the stage")
    o.add_argument("--lr-end", type=positive_float,
                   help="final learning rate of the exponential schedule")
    o.add_argument("--c-lr-ratio", type=non_negative_float,
                   help="learning rate of C (eta2) relative to eta1")
    o.add_argument("--lambda1", type=non_negative_float, help="weight of the kernel loss")
    o.add_argument("--lambda2", type=non_negative_float, help="weight of the adversarial loss")
    o.add_argument("--lambda-decay", type=positive_float,
                   help="factor applied to lambda1/lambda2 every --lambda-every epochs")
    o.add_argument("--lambda-every", type=positive_int, help="epochs between lambda decays")
    o.add_argument("--c-mode", choices=("scalar", "matrix"), help="RBConv scale: one scalar C* (paper) or the full matrix C")
    o.add_argument("--width", type=positive_float,
                   help="channel width multiplier (1.0 = paper AlexNet)")
    o.add_argument("--workers", type=non_negative_int, dest="num_workers",
                   help="DataLoader workers")
    o.add_argument("--seed", type=non_negative_int, help="random seed")
    o.add_argument("--disc-mode", choices=("positions", "pooled"),
                   help="discriminator input: per-position channel vectors or pooled maps")
    o.add_argument("--disc-lr", type=positive_float,
                   help="learning rate of the discriminators (Adam)")
    o.add_argument("--gan-loss", choices=GENERATOR_LOSSES,
                   help="student's adversarial term: paper = 1/2||1-D(T)||^2 (saturates once the "
                        "discriminators win), nonsaturating = -log D(T)")
    a = p.add_argument_group("ablation switches (rbsf stage; the paper's Table 2 columns)")
    a.add_argument("--no-kernel-loss", action="store_true", help="drop the kernel loss")
    a.add_argument("--no-gan", action="store_true", help="drop the discriminators (RBConv only)")
    a.add_argument("--no-bn-update", action="store_true", help="skip the BN update after epochs")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace):
    """The preset with the options applied, checked (``ConfigError`` names the option)."""
    config = preset(args.preset)
    stages = STAGES if args.stage == "all" else (args.stage,)
    for name in ("batch_size", "c_lr_ratio", "lambda1", "lambda2", "lambda_decay",
                 "lambda_every", "c_mode", "width", "num_workers", "seed", "disc_mode",
                 "disc_lr", "gan_loss"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    for stage in stages:
        schedule = config.stage(stage)
        for name in ("epochs", "pairs_per_epoch", "lr", "lr_end"):
            value = getattr(args, name)
            if value is not None:
                setattr(schedule, name, value)
    config.kernel_loss = not args.no_kernel_loss
    config.gan = not args.no_gan
    config.bn_update = not args.no_bn_update
    config.check(stages, dist.launch_size())
    return config, stages


def main(argv=None) -> int:
    args = parse_args(argv)
    config, stages = build_config(args)
    out = Path(args.out)
    teacher = Path(args.teacher) if args.teacher else None
    check_device(args.device)
    check_chain(config, stages, out, teacher, args.resume)
    dist.setup(args.device)
    main_process = dist.is_main()
    started = time.perf_counter()
    try:
        sequences = resolve_sequences(config, args.root, args.subset, out)
        if main_process:
            print(f"training {', '.join(stages)} ({args.preset} preset) on {len(sequences)} "
                  f"sequences -> {out}/", flush=True)
        results = train_chain(config, stages, sequences, out, args.device, teacher,
                              args.resume, args.max_steps)
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
