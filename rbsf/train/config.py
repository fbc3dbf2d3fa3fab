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
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable

from rbsf.errors import RBSFError

STAGES = ("teacher", "xnor", "rbsf")
STAGE_KIND = {"teacher": "fp", "xnor": "xnor", "rbsf": "rbconv"}


class ConfigError(RBSFError, ValueError):
    """A training setting no run can use; the message names the option to change."""


# settings that must be > 0 and >= 0 (the tools' option is the name with dashes)
POSITIVE = ("batch_size", "width", "lambda_decay", "lambda_every", "disc_lr", "bn_update_lr",
            "bn_update_batches", "disc_hidden", "log_every", "exemplar_size", "instance_size",
            "search_size")
NON_NEGATIVE = ("seed", "num_workers", "lambda1", "lambda2", "c_lr_ratio", "momentum",
                "weight_decay")
STAGE_POSITIVE = ("epochs", "pairs_per_epoch", "lr", "lr_end")
CHOICES = {"c_mode": ("scalar", "matrix"), "disc_mode": ("positions", "pooled"),
           "gan_loss": ("paper", "nonsaturating")}


def option(name: str) -> str:
    """The command-line option of a setting (``num_workers`` is ``--workers``)."""
    return "--workers" if name == "num_workers" else "--" + name.replace("_", "-")


@dataclass
class StageConfig:
    """Schedule of one stage."""

    epochs: int = 50
    pairs_per_epoch: int = 9335
    lr: float = 1e-2
    lr_end: float = 1e-5


@dataclass
class TrainConfig:
    """Everything one training run needs; presets below fill it for smoke / cpu / paper."""

    preset: str = "paper"
    seed: int = 0
    width: float = 1.0
    exemplar_size: int = 127
    instance_size: int = 255
    search_size: int = 239
    batch_size: int = 8
    num_workers: int = 0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    stages: Dict[str, StageConfig] = field(default_factory=lambda: {
        "teacher": StageConfig(50, 9335, 1e-2, 1e-5),
        "xnor": StageConfig(50, 9335, 1e-3, 1e-5),
        "rbsf": StageConfig(50, 9335, 1e-3, 1e-5),
    })
    # RB-SF specifics
    c_mode: str = "scalar"
    c_lr_ratio: float = 0.1
    lambda1: float = 0.01
    lambda2: float = 0.01
    lambda_decay: float = 0.9
    lambda_every: int = 20
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
    # bookkeeping
    synthetic_sequences: int = 40
    synthetic_frames: int = 60
    log_every: int = 1

    def stage(self, name: str) -> StageConfig:
        return self.stages[name]

    def check(self, stages: Iterable[str], world_size: int = 1) -> None:
        """``ConfigError`` naming the option when a setting of the ``stages`` to train is out of
        range, or when settings that depend on each other leave an epoch without a mini-batch."""
        def bad(name: str, value, needed: str, where: str = "") -> ConfigError:
            return ConfigError(f"{option(name)} must be {needed}, got {value}{where}")

        for name in POSITIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise bad(name, value, "> 0")
        for name in NON_NEGATIVE:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise bad(name, value, ">= 0")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise bad(name, getattr(self, name), f"one of {', '.join(allowed)}")
        for stage in stages:
            schedule = self.stage(stage)
            for name in STAGE_POSITIVE:
                value = getattr(schedule, name)
                if not (math.isfinite(value) and value > 0):
                    raise bad(name, value, "> 0", f" (stage {stage})")
            share = schedule.pairs_per_epoch // world_size
            if share < self.batch_size:
                per = f" per process ({world_size} processes)" if world_size > 1 else ""
                raise ConfigError(
                    f"--pairs-per-epoch {schedule.pairs_per_epoch} gives {share} pairs{per} per "
                    f"epoch of stage {stage}, fewer than --batch-size {self.batch_size}: no "
                    f"mini-batch would be trained; raise --pairs-per-epoch or lower --batch-size")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainConfig":
        data = dict(data)
        data["stages"] = {k: StageConfig(**v) for k, v in data["stages"].items()}
        return cls(**data)


def preset(name: str) -> TrainConfig:
    """The named preset: ``smoke`` (tests, seconds), ``cpu`` (the default chain on this
    machine, ~15 min on 2 cores), ``gpu`` (synthetic data, minutes on one GPU), ``paper``
    (full SiamFC setting for GOT-10k on a GPU)."""
    if name == "paper":
        return TrainConfig(preset="paper", num_workers=8, bn_update_batches=200)
    if name == "cpu":
        return TrainConfig(
            preset="cpu", num_workers=0, bn_update_batches=10, lambda_every=4,
            stages={"teacher": StageConfig(10, 320, 1e-2, 1e-3),
                    "xnor": StageConfig(4, 320, 1e-2, 1e-3),
                    "rbsf": StageConfig(4, 320, 1e-2, 1e-3)},
            synthetic_sequences=24, synthetic_frames=60)
    if name == "gpu":
        return TrainConfig(
            preset="gpu", num_workers=12, bn_update_batches=20, lambda_every=2,
            stages={"teacher": StageConfig(20, 3200, 1e-2, 1e-5),
                    "xnor": StageConfig(8, 2000, 1e-2, 1e-4),
                    "rbsf": StageConfig(8, 2000, 1e-2, 1e-4)},
            synthetic_sequences=96, synthetic_frames=80)
    if name == "smoke":
        return TrainConfig(
            preset="smoke", width=0.25, exemplar_size=127, instance_size=215, search_size=199,
            batch_size=4, num_workers=0, bn_update_batches=2, lambda_every=1, disc_samples=64,
            disc_hidden=32,
            stages={"teacher": StageConfig(3, 16, 5e-2, 1e-2),
                    "xnor": StageConfig(2, 16, 1e-3, 5e-4),
                    "rbsf": StageConfig(2, 16, 1e-3, 5e-4)},
            synthetic_sequences=4, synthetic_frames=20)
    raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")


PRESETS = ("smoke", "cpu", "gpu", "paper")
