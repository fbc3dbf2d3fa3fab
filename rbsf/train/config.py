"""Training configuration: every hyper-parameter of every stage, in one visible place.

Tracking settings are not given by the RBCN paper; the choices here (and why) are:

* teacher: SiamFC's recipe (SGD momentum 0.9, weight decay 5e-4, lr 1e-2 -> 1e-5 exponential
  over the run, batch 8, exemplar 127, search crops 239).
* students (xnor, rbsf) start from the teacher's weights with the same optimiser and the same
  exponential decay; the ``paper`` preset starts them at lr 1e-3 (fine-tuning a converged
  teacher), the short ``cpu`` and ``gpu`` presets at 1e-2 (at 1e-3 a 160-step XNOR run barely
  moves).
* ``gpu`` is the synthetic-data setting for one GPU (``tools/reproduce.py --preset gpu``): the
  teacher sees 4x the pairs of each student, so it is close to converged before distillation.
* lambda1 = lambda2 = 0.01 (the paper's CIFAR setting: a small model trained briefly), decayed
  by ``lambda_decay`` every ``lambda_every`` epochs. The paper's "degradation of 10 %" is read
  as *multiply by 0.9*; set ``lambda_decay=0.1`` for the other reading.
* C has its own learning rate ``lr * c_lr_ratio`` (eta2) and no weight decay.
* discriminators: Adam lr 1e-4, betas (0.5, 0.999), one step per mini-batch.
* ``gan_loss``: the student's adversarial term, ``"paper"`` (1/2 ||1 - D(T)||^2, saturates once
  the discriminators win) or ``"nonsaturating"`` (-log D(T)); see ``rbsf.discriminator``.
* ``lambda_distill``: weight of a response-distillation term, *beyond the paper* (0, the
  default: off, the paper's objective). A student's output is pulled towards the frozen
  teacher's on the same batch (``Task.distill_loss``): a paired signal, where the paper's
  discriminators see the two models' features unpaired.
* ``negative_pairs``: share of training pairs whose search crop shows another sequence's
  target, every response cell negative, *beyond the paper* (after DaSiamRPN; 0, the default:
  SiamFC's pairs only). Meant to teach the net to tell the target from other objects.
* ``student_optimizer``: ``"sgd"`` (the paper's, the default) or ``"adam"`` (no weight
  decay) for the binary students. Under SGD a latent weight's step is far smaller than the
  weight, and the kernel loss pulls |W| towards C*, away from zero: the RB-SF fine-tunes of
  2026-12-06 changed not one binary weight's sign in 1,000 steps, and the shipped students
  hold 98.9 % of their teacher's signs. Adam's steps are of a set size whatever the gradient's
  scale (the classification ``cpu`` preset uses it for the same reason).
* ``precision``: ``"fp32"``, or ``"bf16"``: forward passes autocast to bfloat16 on
  channels-last tensors (AVX512_BF16 or AMX on CPUs that have them, tensor cores on GPUs),
  while weights, gradients and optimiser state stay float32 (see ``rbsf.train.trainer``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterable, List, Tuple

import torch

from rbsf.errors import RBSFError

STAGES = ("teacher", "xnor", "rbsf")
STAGE_KIND = {"teacher": "fp", "xnor": "xnor", "rbsf": "rbconv"}
PRECISIONS = ("fp32", "bf16")
STUDENT_OPTIMIZERS = ("sgd", "adam")


class ConfigError(RBSFError, ValueError):
    """A training setting no run can use; the message names the option to change."""


def option(name: str) -> str:
    """The command-line option of a setting (``num_workers`` is ``--workers``)."""
    return "--workers" if name == "num_workers" else "--" + name.replace("_", "-")


def _bad(name: str, value, needed: str, where: str = "") -> ConfigError:
    return ConfigError(f"{option(name)} must be {needed}, got {value}{where}")


@dataclass
class Schedule:
    """Schedule of one stage: epochs and the exponential learning-rate decay lr -> lr_end."""

    epochs: int = 50
    lr: float = 1e-2
    lr_end: float = 1e-5


@dataclass
class StageConfig(Schedule):
    """Schedule of one tracking stage, with the pairs it samples per epoch."""

    pairs_per_epoch: int = 9335


@dataclass
class CoreConfig:
    """The settings the shared trainer core reads (``rbsf.train.trainer``): optimisation,
    Algorithm 1's lambdas, kernel loss, GAN and BN update. Each task's config adds its own."""

    # settings that must be > 0 and >= 0 (the tools' option is the name with dashes), and
    # the per-stage ones that must be > 0
    POSITIVE: ClassVar[Tuple[str, ...]] = (
        "batch_size", "lambda_decay", "lambda_every", "disc_lr", "bn_update_lr",
        "bn_update_batches", "disc_hidden", "log_every")
    NON_NEGATIVE: ClassVar[Tuple[str, ...]] = (
        "seed", "num_workers", "lambda1", "lambda2", "lambda_distill", "c_lr_ratio", "momentum",
        "weight_decay")
    STAGE_POSITIVE: ClassVar[Tuple[str, ...]] = ("epochs", "lr", "lr_end")
    CHOICES: ClassVar[Dict[str, Tuple[str, ...]]] = {
        "c_mode": ("scalar", "matrix"), "disc_mode": ("positions", "pooled"),
        "gan_loss": ("paper", "nonsaturating"), "precision": PRECISIONS,
        "student_optimizer": STUDENT_OPTIMIZERS}
    SCHEDULE: ClassVar[type] = Schedule

    preset: str = "paper"
    seed: int = 0
    batch_size: int = 8
    num_workers: int = 0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    stages: Dict[str, Schedule] = field(default_factory=dict)
    # RBCN specifics
    c_mode: str = "scalar"
    c_lr_ratio: float = 0.1
    lambda1: float = 0.01
    lambda2: float = 0.01
    lambda_decay: float = 0.9
    lambda_every: int = 20
    lambda_distill: float = 0.0   # beyond the paper: response distillation from the teacher
    kernel_loss: bool = True
    gan: bool = True
    bn_update: bool = True
    bn_update_batches: int = 50
    bn_update_lr: float = 1e-3
    disc_mode: str = "positions"
    disc_samples: int = 256
    disc_hidden: int = 128
    disc_normalize: bool = True
    disc_lr: float = 1e-4
    gan_loss: str = "paper"
    precision: str = "fp32"
    student_optimizer: str = "sgd"
    log_every: int = 1

    def stage(self, name: str) -> Schedule:
        return self.stages[name]

    def make_optimizer(self, params: List[torch.Tensor], lr: float, weight_decay: float,
                       kind: str) -> torch.optim.Optimizer:
        """The optimiser of the latent weights W (and, with no weight decay, of C) of a model of
        ``kind``: SGD with momentum, or for the binary students with ``student_optimizer="adam"``
        Adam without weight decay (Bi-Real Net trains with Adam: under SGD a latent weight's
        step is too small to flip its sign, see the module docstring)."""
        if kind != "fp" and self.student_optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        return torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=weight_decay)

    def check(self, stages: Iterable[str], world_size: int = 1) -> None:
        """``ConfigError`` naming the option when a setting of the ``stages`` to train is out of
        range."""
        for name in self.POSITIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise _bad(name, value, "> 0")
        for name in self.NON_NEGATIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise _bad(name, value, ">= 0")
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                raise _bad(name, getattr(self, name), f"one of {', '.join(allowed)}")
        for stage in stages:
            schedule = self.stage(stage)
            for name in self.STAGE_POSITIVE:
                value = getattr(schedule, name)
                if not (math.isfinite(value) and value > 0):
                    raise _bad(name, value, "> 0", f" (stage {stage})")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]):
        data = dict(data)
        data["stages"] = {k: cls.SCHEDULE(**v) for k, v in data["stages"].items()}
        return cls(**data)


@dataclass
class TrainConfig(CoreConfig):
    """Everything one tracking training run needs; presets below fill it for smoke / cpu /
    paper."""

    POSITIVE: ClassVar[Tuple[str, ...]] = CoreConfig.POSITIVE + (
        "width", "exemplar_size", "instance_size", "search_size")
    STAGE_POSITIVE: ClassVar[Tuple[str, ...]] = ("epochs", "pairs_per_epoch", "lr", "lr_end")
    SCHEDULE: ClassVar[type] = StageConfig

    width: float = 1.0
    exemplar_size: int = 127
    instance_size: int = 255
    search_size: int = 239
    negative_pairs: float = 0.0   # beyond the paper: share of negative pairs (other sequence)
    # finished checkpoints that stages start from (fine-tuning), {stage: path}, each of its
    # stage's own kind: the teacher's instead of random weights, a student's instead of its
    # teacher's weights; a stage not named starts as usual
    init: Dict[str, str] = field(default_factory=dict)
    stages: Dict[str, StageConfig] = field(default_factory=lambda: {
        "teacher": StageConfig(epochs=50, pairs_per_epoch=9335, lr=1e-2, lr_end=1e-5),
        "xnor": StageConfig(epochs=50, pairs_per_epoch=9335, lr=1e-3, lr_end=1e-5),
        "rbsf": StageConfig(epochs=50, pairs_per_epoch=9335, lr=1e-3, lr_end=1e-5),
    })
    # bookkeeping
    synthetic_sequences: int = 40
    synthetic_frames: int = 60

    def check(self, stages: Iterable[str], world_size: int = 1) -> None:
        """As ``CoreConfig.check``, and ``ConfigError`` when settings that depend on each other
        leave an epoch without a mini-batch."""
        stages = list(stages)
        super().check(stages, world_size)
        if not (math.isfinite(self.negative_pairs) and 0 <= self.negative_pairs < 1):
            raise _bad("negative_pairs", self.negative_pairs, "at least 0 and below 1")
        for stage in self.init:
            if stage not in STAGES:
                raise ConfigError(f"--init {stage}=CKPT names no stage; expected one of "
                                  f"{', '.join(STAGES)}")
        for stage in stages:
            schedule = self.stage(stage)
            share = schedule.pairs_per_epoch // world_size
            if share < self.batch_size:
                per = f" per process ({world_size} processes)" if world_size > 1 else ""
                raise ConfigError(
                    f"--pairs-per-epoch {schedule.pairs_per_epoch} gives {share} pairs{per} per "
                    f"epoch of stage {stage}, fewer than --batch-size {self.batch_size}: no "
                    f"mini-batch would be trained; raise --pairs-per-epoch or lower --batch-size")


def preset(name: str) -> TrainConfig:
    """The named preset: ``smoke`` (tests, seconds), ``cpu`` (the default chain on this
    machine, ~15 min on 2 cores), ``gpu`` (synthetic data, minutes on one GPU), ``paper``
    (full SiamFC setting for GOT-10k on a GPU)."""
    if name == "paper":
        return TrainConfig(preset="paper", num_workers=8, bn_update_batches=200)
    if name == "cpu":
        return TrainConfig(
            preset="cpu", num_workers=0, bn_update_batches=10, lambda_every=4,
            stages={"teacher": StageConfig(epochs=10, pairs_per_epoch=320, lr=1e-2, lr_end=1e-3),
                    "xnor": StageConfig(epochs=4, pairs_per_epoch=320, lr=1e-2, lr_end=1e-3),
                    "rbsf": StageConfig(epochs=4, pairs_per_epoch=320, lr=1e-2, lr_end=1e-3)},
            synthetic_sequences=24, synthetic_frames=60)
    if name == "gpu":
        return TrainConfig(
            preset="gpu", num_workers=12, bn_update_batches=20, lambda_every=2,
            stages={"teacher": StageConfig(epochs=20, pairs_per_epoch=3200, lr=1e-2, lr_end=1e-5),
                    "xnor": StageConfig(epochs=8, pairs_per_epoch=2000, lr=1e-2, lr_end=1e-4),
                    "rbsf": StageConfig(epochs=8, pairs_per_epoch=2000, lr=1e-2, lr_end=1e-4)},
            synthetic_sequences=96, synthetic_frames=80)
    if name == "smoke":
        return TrainConfig(
            preset="smoke", width=0.25, exemplar_size=127, instance_size=215, search_size=199,
            batch_size=4, num_workers=0, bn_update_batches=2, lambda_every=1, disc_samples=64,
            disc_hidden=32,
            stages={"teacher": StageConfig(epochs=3, pairs_per_epoch=16, lr=5e-2, lr_end=1e-2),
                    "xnor": StageConfig(epochs=2, pairs_per_epoch=16, lr=1e-3, lr_end=5e-4),
                    "rbsf": StageConfig(epochs=2, pairs_per_epoch=16, lr=1e-3, lr_end=5e-4)},
            synthetic_sequences=4, synthetic_frames=20)
    raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")


PRESETS = ("smoke", "cpu", "gpu", "paper")


# ---------------------------------------------------------------------------- classification
CLS_STAGES = ("fp", "xnor", "bireal", "rbcn")
CLS_STAGE_KIND = {"fp": "fp", "xnor": "xnor", "bireal": "bireal", "rbcn": "rbconv"}
CLS_DATASETS = ("mnist", "cifar10", "cifar100", "imagenet")
CLS_ARCHS = ("resnet18", "wrn22", "wrn40")


@dataclass
class ClsConfig(CoreConfig):
    """Everything one classification training run needs (``cls_preset`` fills it).

    Stages are the methods: ``fp`` (the teacher), ``xnor``, ``bireal`` and ``rbcn`` (RBConv +
    kernel loss + GAN + BN update; the ablation switches turn each off). ``widths`` are the
    backbone's four stage widths (``--stages``). An epoch is one pass over the training images
    (``train_samples`` of them when > 0: a seeded subset, for quick runs)."""

    POSITIVE: ClassVar[Tuple[str, ...]] = CoreConfig.POSITIVE + ("eval_batch",)
    NON_NEGATIVE: ClassVar[Tuple[str, ...]] = CoreConfig.NON_NEGATIVE + (
        "train_samples", "test_samples", "eval_train_samples", "crop_padding", "image_size")
    CHOICES: ClassVar[Dict[str, Tuple[str, ...]]] = {
        **CoreConfig.CHOICES, "dataset": CLS_DATASETS, "arch": CLS_ARCHS}

    dataset: str = "mnist"
    arch: str = "resnet18"
    widths: Tuple[int, ...] = (32, 32, 64, 128)
    train_samples: int = 0
    test_samples: int = 0
    eval_train_samples: int = 1000
    eval_batch: int = 256
    crop_padding: int = 0
    flip: bool = False
    image_size: int = 0
    stages: Dict[str, Schedule] = field(default_factory=dict)

    def check(self, stages: Iterable[str], world_size: int = 1) -> None:
        super().check(stages, world_size)
        if len(self.widths) != 4 or min(self.widths) <= 0:
            raise ConfigError(f"--stages must be 4 positive widths, got "
                              f"{'-'.join(map(str, self.widths))}")

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ClsConfig":
        config = super().from_dict(data)
        config.widths = tuple(config.widths)
        return config


def cls_preset(name: str, dataset: str = "mnist") -> ClsConfig:
    """The named classification preset for ``dataset``.

    * ``paper``: the RBCN recipes. CIFAR (and MNIST): 200 epochs, batch 128, SGD momentum 0.9,
      weight decay 5e-4, lambda1 = lambda2 = 0.01 decayed x0.9 every 60 epochs, random crop
      after 4-pixel padding and horizontal flip (no flip for digits). ImageNet: 70 epochs,
      batch 256, weight decay 1e-4, lambdas 0.1 decayed every 20 epochs, 224 crops of images
      resized to 256. The paper gives no learning rates: the teacher runs 0.1 -> 1e-4 and the
      students, which start from it, 0.01 -> 1e-5 (exponential, as in tracking).
    * ``cpu``: the shipped MNIST digits on two CPU cores: ResNet18 of widths 16-16-32-64 (the
      tools' --stages overrides it), 5 teacher epochs (SGD 0.05 -> 0.005) and 4 per student
      with Adam (1e-3 -> 1e-4): with SGD the students were far behind after 4 epochs (XNOR at
      55 % test error, Adam 12 % after 3), minutes each. lambda1 = lambda2 = 1e-4: Adam divides
      each weight's gradient by its own running size, so a loss term's weight no longer sets its
      share of the step as it does under the paper's SGD; at the paper's 0.01 the kernel loss
      dominated the direction of every weight with a small task gradient and cost RBConv 9
      points of top-1 (seed 0: 82.8 % against 92.0 % without it, 91.2 % at 1e-4).
    * ``smoke``: seconds; tiny widths, 256 training and 128 test images, one epoch.
    """
    imagenet = dataset == "imagenet"
    digits = dataset == "mnist"
    augment = dict(crop_padding=0 if imagenet else (2 if digits else 4), flip=not digits,
                   image_size=224 if imagenet else 0)
    if name == "paper":
        teacher, student = ((Schedule(70, 0.1, 1e-4), Schedule(70, 0.01, 1e-5)) if imagenet
                            else (Schedule(200, 0.1, 1e-4), Schedule(200, 0.01, 1e-5)))
        return ClsConfig(
            preset="paper", dataset=dataset, num_workers=8, batch_size=256 if imagenet else 128,
            weight_decay=1e-4 if imagenet else 5e-4, lambda1=0.1 if imagenet else 0.01,
            lambda2=0.1 if imagenet else 0.01, lambda_every=20 if imagenet else 60,
            bn_update_batches=200, widths=(64, 128, 256, 512) if imagenet else (32, 32, 64, 128),
            stages=_cls_stages(teacher, student), **augment)
    if name == "cpu":
        return ClsConfig(
            preset="cpu", dataset=dataset, batch_size=64, lambda1=1e-4, lambda2=1e-4,
            lambda_every=2, bn_update_batches=10,
            widths=(16, 16, 32, 64), eval_train_samples=1000, student_optimizer="adam",
            stages=_cls_stages(Schedule(5, 0.05, 5e-3), Schedule(4, 1e-3, 1e-4)), **augment)
    if name == "smoke":
        return ClsConfig(
            preset="smoke", dataset=dataset, batch_size=32, lambda_every=1, bn_update_batches=2,
            disc_samples=64, disc_hidden=32, widths=(8, 8, 16, 16), train_samples=256,
            test_samples=128, eval_train_samples=128, eval_batch=128,
            student_optimizer="adam",
            stages=_cls_stages(Schedule(1, 0.05, 0.01), Schedule(1, 1e-3, 5e-4)), **augment)
    raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(CLS_PRESETS)}")


def _cls_stages(teacher: Schedule, student: Schedule) -> Dict[str, Schedule]:
    return {stage: dataclasses.replace(teacher if stage == "fp" else student)
            for stage in CLS_STAGES}


CLS_PRESETS = ("smoke", "cpu", "paper")
