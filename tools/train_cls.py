"""Train a classifier of the paper (ResNet18 / WRN22 / WRN40) in full precision, XNOR, Bi-Real
or RBCN form, and score it on the test split (top-1 / top-5).

With no arguments: RBCN on the shipped real MNIST digits (data/mnist) with the cpu preset,
its full-precision teacher trained first, into runs/cls/.

    python tools/train_cls.py --dataset cifar100 --root data/cifar-100-python --kind rbcn \\
        --stages 32-32-64-128 --preset paper --device cuda
    python tools/train_cls.py --kind xnor --teacher runs/cls/fp/last.pt --out runs/cls-xnor

Students (xnor, bireal, rbcn) start from a finished full-precision teacher of the same
backbone, and RBCN's discriminators learn from its feature maps: the teacher is trained first
into OUT/fp/ (reused there once finished), or given with --teacher CKPT (copied to OUT/fp/).
Writes OUT/<kind>/last.pt, log.csv, loss.png, epochs.csv and errors.png (training and test
error per epoch), and OUT/metrics.json and OUT/report.md with the test scores.

Distributed: ``torchrun --nproc_per_node=N tools/train_cls.py ...`` (gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import json
import sys
import time
from pathlib import Path

from rbsf.data.classification import DATASETS, SHIPPED_ROOTS
from rbsf.data.sequences import DatasetError
from rbsf.devices import check_device
from rbsf.files import atomic_open
from rbsf.train import distributed as dist
from rbsf.train.classification import (METHOD_NAMES, ClsData, check_cls_chain, cls_stages,
                                       stage_metrics, train_cls_chain)
from rbsf.train.config import CLS_ARCHS, CLS_PRESETS, CLS_STAGES, cls_preset
from tools.cli import ArgumentParser, non_negative_int, run_tool
from tools.train_options import (add_ablation_switches, add_core_overrides, add_run_options,
                                 apply_overrides)


def widths(text: str):
    """--stages 32-32-64-128 (commas work too)."""
    try:
        values = tuple(int(v) for v in text.replace(",", "-").split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 4 widths like 32-32-64-128, got {text!r}")
    if len(values) != 4 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected 4 positive widths like 32-32-64-128, "
                                         f"got {text!r}")
    return values


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="mnist (idx files), cifar10 / cifar100 (python pickles), imagenet "
                        "(train/ and val/ class folders) (default: mnist)")
    p.add_argument("--root", help="folder of the data set (default: data/mnist, the shipped "
                                  "5,000 real digits; required for the others)")
    p.add_argument("--arch", choices=CLS_ARCHS, default="resnet18", help="backbone")
    p.add_argument("--stages", type=widths, dest="widths", metavar="A-B-C-D",
                   help="kernel stage widths, e.g. 32-32-64-128 (default: the preset's)")
    p.add_argument("--kind", choices=CLS_STAGES, default="rbcn",
                   help="method: fp (the teacher), xnor, bireal or rbcn = RBConv + kernel loss "
                        "+ GAN + BN update (default: rbcn)")
    p.add_argument("--preset", choices=CLS_PRESETS, default="cpu",
                   help="smoke: seconds; cpu: minutes on 2 cores; paper: the paper's recipe "
                        "for the data set, for a GPU (default: cpu)")
    add_run_options(p, "runs/cls")
    p.add_argument("--teacher", metavar="CKPT",
                   help="finished full-precision checkpoint of this tool to start the student "
                        "from (default: train one first into OUT/fp)")
    o = add_core_overrides(p, "images")
    o.add_argument("--train-samples", type=non_negative_int,
                   help="train on a seeded subset of this many images (0: all)")
    add_ablation_switches(p, "rbcn")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace):
    """The preset with the options applied, the stages to train, the data root."""
    config = cls_preset(args.preset, args.dataset)
    config.arch = args.arch
    if args.widths:
        config.widths = args.widths
    if args.train_samples is not None:
        config.train_samples = args.train_samples
    teacher = Path(args.teacher) if args.teacher else None
    stages = cls_stages(args.kind, teacher)
    apply_overrides(config, args, stages)
    root = args.root or SHIPPED_ROOTS.get(args.dataset)
    if root is None:
        raise DatasetError(f"--dataset {args.dataset} needs --root DIR, the folder that holds "
                           f"it (nothing is downloaded)")
    return config, stages, teacher, root


def report(metrics: dict) -> str:
    """The markdown report of one run."""
    model = metrics["model"]
    lines = [f"# {METHOD_NAMES[metrics['kind']]} {model['arch']} {model['stages']} on "
             f"{metrics['dataset']}", "",
             f"Test split: {metrics['test_images']} images; preset `{metrics['preset']}`.", "",
             "| model | top-1 (%) | top-5 (%) | epochs | steps x batch | train minutes |",
             "|---|---|---|---|---|---|"]
    for stage, entry in metrics["stages"].items():
        budget = entry["budget"]
        minutes = f"{budget['seconds'] / 60:.1f}" if budget["seconds"] is not None else "given"
        lines.append(f"| {METHOD_NAMES[stage]} | {100 * entry['top1']:.2f} | "
                     f"{100 * entry['top5']:.2f} | {budget['epochs']} | {budget['steps']} x "
                     f"{budget['batch_size']} | {minutes} |")
    lines += ["", "Per-epoch training / test error: `<stage>/epochs.csv`, `<stage>/errors.png`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    config, stages, teacher, root = build_config(args)
    out = Path(args.out)
    check_device(args.device)
    check_cls_chain(config, stages, out, teacher, args.resume)
    data = ClsData(config, root)
    dist.setup(args.device)
    main_process = dist.is_main()
    started = time.perf_counter()
    try:
        if main_process:
            print(f"training {', '.join(stages)} ({args.preset} preset) on {config.dataset}: "
                  f"{len(data.train)} training, {len(data.test)} test images -> {out}/",
                  flush=True)
        results = train_cls_chain(config, stages, data, out, args.device, teacher,
                                  args.resume, args.max_steps)
    finally:
        dist.teardown()
    if not main_process:
        return 0
    scores = {stage: stage_metrics(path, data, config) for stage, path in results.items()}
    result = scores[args.kind]
    metrics = {"dataset": config.dataset, "root": root, "kind": args.kind,
               "preset": args.preset, "top1": result["top1"], "top5": result["top5"],
               "test_images": result["images"],
               "model": {"arch": config.arch, "stages": "-".join(map(str, config.widths))},
               "ablation": {"kernel_loss": config.kernel_loss, "gan": config.gan,
                            "bn_update": config.bn_update},
               "config": config.to_dict(), "stages": scores}
    with atomic_open(out / "metrics.json") as handle:
        json.dump(metrics, handle, indent=2)
    with atomic_open(out / "report.md") as handle:
        handle.write(report(metrics))
    for stage, entry in scores.items():
        print(f"{stage}: top-1 {100 * entry['top1']:.2f} %, top-5 {100 * entry['top5']:.2f} % "
              f"({entry['checkpoint']})")
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min; {out / 'metrics.json'}, "
          f"{out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="rerun with --resume to continue"))
