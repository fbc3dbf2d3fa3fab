"""The options the two training tools share (tools/train_rbsf.py, tools/train_cls.py): how to
continue a run, the preset overrides of the trainer core and the paper's ablation switches."""
from __future__ import annotations

import argparse
from typing import Iterable, Sequence

from rbsf.discriminator import GENERATOR_LOSSES
from rbsf.train.config import PRECISIONS, STUDENT_OPTIMIZERS, CoreConfig
from tools.cli import non_negative_float, non_negative_int, positive_float, positive_int

# settings of the core (CoreConfig) and of a stage's schedule that an option of the same name
# overrides
CORE_OPTIONS = ("batch_size", "c_lr_ratio", "lambda1", "lambda2", "lambda_decay",
                "lambda_every", "lambda_distill", "c_mode", "num_workers", "seed", "disc_mode",
                "disc_lr", "gan_loss", "precision", "student_optimizer")
SCHEDULE_OPTIONS = ("epochs", "lr", "lr_end")


def add_run_options(parser: argparse.ArgumentParser, out: str) -> None:
    """--out, --resume, --device, --teacher, --max-steps."""
    parser.add_argument("--out", default=out, help=f"output folder (default: {out})")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out with the same settings and "
                             "data (finished stages are skipped; after a NaN stop the learning "
                             "rates and lambdas may change)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--max-steps", type=positive_int,
                        help="stop (and save) after this many steps in total; --resume "
                             "continues")


def add_core_overrides(parser: argparse.ArgumentParser, items: str) -> argparse._ArgumentGroup:
    """The overrides of the core's settings (``items``: what a mini-batch holds); returns the
    group, for the tool's own overrides."""
    o = parser.add_argument_group("overrides of the preset (apply to the stages being trained)")
    o.add_argument("--epochs", type=positive_int, help="epochs per stage")
    o.add_argument("--batch-size", type=positive_int, help=f"{items} per mini-batch (per process)")
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
    o.add_argument("--lambda-distill", type=non_negative_float,
                   help="students: weight of a response-distillation term towards the teacher's "
                        "output on the same batch (beyond the paper; 0: off, the default)")
    o.add_argument("--c-mode", choices=("scalar", "matrix"),
                   help="RBConv scale: one scalar C* (paper) or the full matrix C")
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
    o.add_argument("--precision", choices=PRECISIONS,
                   help="fp32, or bf16: forward passes in bfloat16 on channels-last tensors, "
                        "weights and gradients in float32 (measured on 2 cores: 2.2x faster with "
                        "AVX512_BF16, 3.4-3.6x with AMX; default: fp32)")
    o.add_argument("--student-optimizer", choices=STUDENT_OPTIMIZERS,
                   help="optimiser of the binary students: sgd (momentum, the paper's) or adam "
                        "(no weight decay; flips latent weights' signs where SGD's small steps "
                        "leave them as the teacher's)")
    return o


def add_ablation_switches(parser: argparse.ArgumentParser, stage: str) -> None:
    """--no-kernel-loss, --no-gan, --no-bn-update (the paper's Table 2 columns)."""
    a = parser.add_argument_group(f"ablation switches ({stage} stage; the paper's Table 2 "
                                  f"columns)")
    a.add_argument("--no-kernel-loss", action="store_true", help="drop the kernel loss")
    a.add_argument("--no-gan", action="store_true", help="drop the discriminators (RBConv only)")
    a.add_argument("--no-bn-update", action="store_true", help="skip the BN update after epochs")


def apply_overrides(config: CoreConfig, args: argparse.Namespace, stages: Iterable[str],
                    names: Sequence[str] = CORE_OPTIONS,
                    schedule_names: Sequence[str] = SCHEDULE_OPTIONS) -> None:
    """Set every option given on the command line, and the ablation switches, in ``config``."""
    for name in names:
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    for stage in stages:
        schedule = config.stage(stage)
        for name in schedule_names:
            value = getattr(args, name)
            if value is not None:
                setattr(schedule, name, value)
    config.kernel_loss = not args.no_kernel_loss
    config.gan = not args.no_gan
    config.bn_update = not args.no_bn_update
