"""The trainer core shared by every task (tracking, classification): Algorithm 1 of RBCN.

``CoreTrainer`` trains one stage of one conv kind; what is specific to a task (its model, its
data, its loss, its logged statistics and its evaluation) is a ``Task`` handed to it
(``rbsf.train.tracking.TrackingTask``: SiamFC pairs and the balanced logistic loss;
``rbsf.train.classification.ClassificationTask``: images and cross-entropy). A stage of kind
``fp`` is a teacher; every other kind starts from the teacher's weights; kind ``rbconv`` adds
the kernel loss, the discriminators on the teacher's and the student's taps and the BN update
(each of which a setting switches off, the paper's ablation).

Per mini-batch of an ``rbconv`` stage (Algorithm 1):

1. forward the binary student (conv with sign(W) (.) C*) and, without gradients, the frozen
   teacher, both returning the feature maps of every binarized layer;
2. for l = L ... 1: one ascent step of discriminator D^l on log D(R^l) + log(1 - D(T^l)) with
   the student maps detached;
3. loss = L_S + lambda1 * L_kernel + lambda2 * L_adv (with the updated discriminators)
   [+ lambda_distill * L_distill, the student's output against the teacher's on the same
   batch: beyond the paper, off by default, for any student kind];
   one backward gives dW and dC at the same point; W (and every other weight) is updated
   first with lr eta1, then C with its own lr eta2.

With ``precision="bf16"`` every forward pass (student, teacher, discriminators, losses) runs
under ``torch.autocast`` to bfloat16 on channels-last tensors, and each backward pass outside
it: the weights, their gradients and the optimisers' state stay float32 (no loss scaling is
needed: bfloat16 has float32's range).

After each epoch, the BN layers are trained for ``bn_update_batches`` mini-batches on the task
loss with every other parameter fixed (the "BN update" of the paper). Then lambda1 and lambda2
are decayed on their schedule and the learning rates follow their exponential schedule.

Never lose work: the checkpoint (model, discriminators, optimisers, schedules, lambdas, RNG
states, position, a fingerprint of the training data) is written atomically after each epoch
and when stopped (Ctrl-C at any moment, or a step budget); resuming continues exactly where the
run stopped, and only with the same settings and the same data. A non-finite loss stops the run
with a clear message and keeps the last good checkpoint; resuming it may then lower the
learning rates and the lambdas (``NAN_RESUMABLE``), which the checkpoint records.
"""
from __future__ import annotations

import math
import random
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from rbsf.binary import RBConv2d, binary_convs, kernel_loss, sign_changes, weight_signs
from rbsf.checkpoint import FORMAT, load_checkpoint
from rbsf.discriminator import (build_discriminators, discriminator_loss, feature_vectors,
                                generator_loss)
from rbsf.errors import Interrupted, RBSFError
from rbsf.files import save_atomic
from rbsf.train import distributed as dist
from rbsf.train.config import CoreConfig
from rbsf.train.logs import CsvLog, plot_losses

RESUMABLE_CHANGES = {"num_workers", "log_every"}
# what a resume may change after a non-finite loss stopped the run ({stage}: the stage's own)
NAN_RESUMABLE = ("stages.{stage}.lr", "stages.{stage}.lr_end", "lambda1", "lambda2",
                 "c_lr_ratio", "disc_lr")


class TrainingError(RBSFError, RuntimeError):
    """A run cannot go on (non-finite loss, incompatible checkpoint); the message says why."""


class Task(Protocol):
    """What a task gives the core. Its model's ``forward(*inputs)`` returns the output and its
    ``forward_taps(*inputs)`` the output and ``{tap name: map or tuple of maps}``; its data sets
    have ``set_epoch(epoch)`` and give the same items for the same (epoch, index) whatever the
    workers, which makes a resumed run bit-exact."""

    train_set: Dataset          # one epoch of training items
    bn_set: Dataset             # the items of one BN update
    fingerprint: dict           # identifies the training data wherever it lies
    data_hint: str              # the options that choose the data (for messages)
    budget_name: str            # what a training item is, for the checkpoint's budget
    log_columns: List[str]

    def build_model(self, kind: str) -> nn.Module: ...

    def init_student(self, model: nn.Module, teacher: nn.Module) -> None: ...

    def tap_channels(self, model: nn.Module) -> Dict[str, int]: ...

    def split(self, batch, device: str) -> Tuple[tuple, object]: ...

    def loss(self, output: torch.Tensor, targets) -> torch.Tensor: ...

    def distill_loss(self, output: torch.Tensor, teacher_output: torch.Tensor
                     ) -> torch.Tensor: ...

    def grad_norms(self, model: nn.Module) -> Dict[str, float]: ...

    def output_stats(self, output: torch.Tensor, targets) -> Dict[str, float]: ...

    def describe(self, fingerprint: dict) -> str: ...

    def title(self, kind: str, stage: str) -> str: ...

    def end_epoch(self, model: nn.Module, epoch: int) -> Optional[dict]: ...

    def write_history(self, history: List[dict], folder: Path, title: str) -> None: ...


def _flatten(config: dict, prefix: str = "") -> dict:
    """{"stages": {"rbsf": {"epochs": 2}}} -> {"stages.rbsf.epochs": 2}."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _concerns(key: str, stage: str) -> bool:
    """Whether a flattened setting applies to ``stage``: per-stage settings (``stages.<stage>.``,
    ``init.<stage>``) only to their own stage, every other setting to all."""
    head, _, rest = key.partition(".")
    if head in ("stages", "init"):
        return rest.split(".")[0] == stage
    return True


def refuse_existing(path: Path, resume: bool) -> None:
    """``TrainingError`` when a stage checkpoint is in the way of a run without ``resume``."""
    if not resume:
        raise TrainingError(f"{path} exists; pass --resume to continue it or choose another "
                            f"--out")


def check_resumable(data: dict, path: Path, config: CoreConfig, stage: str) -> Dict[str, list]:
    """Whether the training checkpoint ``data`` (read from ``path``) can be continued with
    ``config``; returns the settings it changes ({key: [saved, new]}, only what a NaN stop
    allows), raises ``TrainingError`` naming what differs otherwise. A finished stage is not
    continued (resume skips it), so nothing is compared."""
    if data.get("stage") != stage or "model" not in data:
        raise TrainingError(f"{path} is not a {stage} training checkpoint; remove it or pick "
                            f"another --out")
    if "opt_w" not in data:
        raise TrainingError(f"{path} is a slim copy without optimiser state "
                            f"(rbsf.checkpoint.slim_checkpoint) and cannot be resumed; move it "
                            f"away, or train the stage again starting from it (--init "
                            f"{stage}=CHECKPOINT)")
    if data["finished"]:
        return {}
    # a setting added after the checkpoint was written had its default value then
    defaults = _flatten(type(config)().to_dict())
    saved = {**defaults, **_flatten(data["train_config"])}
    current = _flatten(config.to_dict())
    changed = sorted(k for k, v in current.items()
                     if _concerns(k, stage) and k not in RESUMABLE_CHANGES and saved.get(k) != v)
    allowed = {k.format(stage=stage) for k in NAN_RESUMABLE} if data.get("stopped_by") else set()
    refused = [k for k in changed if k not in allowed]
    if refused:
        after_nan = (" (after a NaN stop only the learning rates and lambdas may change)"
                     if allowed else "")
        raise TrainingError(f"{path} was trained with other settings ({', '.join(refused)})"
                            f"{after_nan}; resume with the same preset and options, or use "
                            f"another --out")
    return {k: [saved.get(k), current[k]] for k in changed if k in allowed}


def _ignore_ctrl_c(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the trainer, which stops at a batch boundary."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _maps(tap) -> Sequence[torch.Tensor]:
    """The feature maps of one tap: a tuple of maps (SiamFC: exemplar, search) or one map."""
    return tap if isinstance(tap, (tuple, list)) else (tap,)


class _Taps(nn.Module):
    """Adapter so DDP wraps the call that returns the output *and* the feature taps."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor):
        return self.net.forward_taps(*inputs)


class CoreTrainer:
    """Trains one stage of ``kind`` on ``task`` into ``out_dir/<stage>/`` (last.pt, log.csv,
    loss.png, and what the task writes per epoch).

    ``log.csv`` has one row per step: the losses, lr, lambdas, the task's statistics (the
    tracking task's response std and per-layer gradient norms, ...), ``sign_flips`` (binary
    students: how many binary weights changed sign in the step; 0 step after step means the
    binary layers are not learning) and ``elapsed_s``, the wall seconds since this process
    started the stage. ``init`` is a finished model of the stage's
    own kind whose weights the training starts from (fine-tuning) instead of the random
    initialisation (fp) or the teacher's weights (students)."""

    def __init__(self, task: Task, config: CoreConfig, stage: str, kind: str, out_dir: Path,
                 device: str = "cpu", teacher: Optional[nn.Module] = None,
                 max_steps: Optional[int] = None, show_progress: bool = True,
                 init: Optional[nn.Module] = None):
        self.task = task
        self.cfg = config
        self.stage = stage
        self.kind = kind
        self.schedule = config.stage(stage)
        self.dir = Path(out_dir) / stage
        self.ckpt_path = self.dir / "last.pt"
        self.log = CsvLog(self.dir / "log.csv", task.log_columns)
        self.device = dist.local_device(device)
        self.max_steps = max_steps
        self.show_progress = show_progress and dist.is_main()
        self._stop_requested = False
        self._started = time.perf_counter()

        # Binary layers' backward passes produce denormal floats; on a CPU each one costs a
        # slow micro-code path (XNOR / RB-SF steps ran 10-40x slower). Flush them to zero.
        torch.set_flush_denormal(True)
        torch.manual_seed(config.seed)
        self.memory_format = (torch.channels_last if config.precision == "bf16"
                              else torch.contiguous_format)
        self.model = task.build_model(kind).to(self.device, memory_format=self.memory_format)
        self.teacher = None
        if kind != "fp":
            if teacher is None:
                raise TrainingError(f"stage {stage} needs a trained teacher")
            if init is None:
                task.init_student(self.model, teacher)
            if kind == "rbconv" or config.lambda_distill > 0:
                self.teacher = teacher.to(self.device, memory_format=self.memory_format).eval()
                for p in self.teacher.parameters():
                    p.requires_grad_(False)
        if init is not None:
            if init.kind != kind:
                raise TrainingError(f"stage {stage} trains a {kind} model; its init weights "
                                    f"are {init.kind}")
            try:
                self.model.load_state_dict(init.state_dict())
            except RuntimeError as exc:
                raise TrainingError(f"the init weights of stage {stage} do not fit its model: "
                                    f"{str(exc).splitlines()[0]}") from exc
        self.runner = dist.wrap(_Taps(self.model), self.device)

        scales = [m.C for _, m in binary_convs(self.model) if isinstance(m, RBConv2d)]
        scale_ids = {id(p) for p in scales}
        weights = [p for p in self.model.parameters() if id(p) not in scale_ids]
        s = self.schedule
        self.opt_w = config.make_optimizer(weights, s.lr, config.weight_decay, kind)
        self.opt_c = (config.make_optimizer(scales, s.lr * config.c_lr_ratio, 0, kind)
                      if scales else None)
        gamma = (s.lr_end / s.lr) ** (1.0 / max(1, s.epochs))
        self.sched_w = torch.optim.lr_scheduler.ExponentialLR(self.opt_w, gamma)
        self.sched_c = (torch.optim.lr_scheduler.ExponentialLR(self.opt_c, gamma)
                        if self.opt_c else None)

        self.discs = None
        if kind == "rbconv" and config.gan:
            self.discs = build_discriminators(task.tap_channels(self.model),
                                              config.disc_hidden).to(self.device)
            self.opt_d = torch.optim.Adam(self.discs.parameters(), lr=config.disc_lr,
                                          betas=(0.5, 0.999))

        self.data = task.fingerprint
        self.generator = torch.Generator().manual_seed(config.seed)
        self.lambda1 = config.lambda1
        self.lambda2 = config.lambda2
        self.epoch = 0
        self.batch = 0
        self.step = 0
        self.saved_step: Optional[int] = None      # step of the checkpoint on disk, if any
        self.settings_changes: List[dict] = []
        self.history: List[dict] = []              # the task's record of each epoch, if any

    # ----------------------------------------------------------------- state
    def state(self, finished: bool) -> dict:
        """Everything needed to continue the run exactly, plus the model in load_model's format."""
        state = {
            "format": FORMAT, "model_config": self.model.config(),
            "model": {k: v.contiguous() for k, v in self.model.state_dict().items()},
            "stage": self.stage, "finished": finished, "train_config": self.cfg.to_dict(),
            "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "lambda1": self.lambda1, "lambda2": self.lambda2,
            "opt_w": self.opt_w.state_dict(), "sched_w": self.sched_w.state_dict(),
            "opt_c": self.opt_c.state_dict() if self.opt_c else None,
            "sched_c": self.sched_c.state_dict() if self.sched_c else None,
            "discs": self.discs.state_dict() if self.discs is not None else None,
            "opt_d": self.opt_d.state_dict() if self.discs is not None else None,
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state(),
                    "numpy": np.random.get_state(), "python": random.getstate()},
            "budget": {self.task.budget_name: self.step * self.cfg.batch_size
                       * dist.world_size()},
            "data": self.data, "settings_changes": self.settings_changes,
        }
        if self.history:
            state["history"] = self.history
        return state

    def save(self, finished: bool = False) -> None:
        if dist.is_main():
            save_atomic(self.state(finished), self.ckpt_path)
        dist.barrier()
        self.saved_step = self.step

    def restore(self, path: Path) -> bool:
        """Load a training checkpoint; returns whether that stage had already finished."""
        data = load_checkpoint(path)
        changes = check_resumable(data, path, self.cfg, self.stage)
        if data["finished"]:
            return True
        if data["model_config"] != self.model.config():
            raise TrainingError(f"{path} was trained with model {data['model_config']}, this run "
                                f"asks for {self.model.config()}; use the same preset/options")
        if data.get("data", self.data) != self.data:
            describe = self.task.describe
            raise TrainingError(f"{path} was trained on other data ({describe(data['data'])}) "
                                f"than this run's ({describe(self.data)}); resume on the same "
                                f"data set ({self.task.data_hint}), or use another --out")
        self.model.load_state_dict(data["model"])
        self.opt_w.load_state_dict(data["opt_w"])
        self.sched_w.load_state_dict(data["sched_w"])
        if self.opt_c:
            self.opt_c.load_state_dict(data["opt_c"])
            self.sched_c.load_state_dict(data["sched_c"])
        if self.discs is not None:
            self.discs.load_state_dict(data["discs"])
            self.opt_d.load_state_dict(data["opt_d"])
        self.epoch, self.batch, self.step = data["epoch"], data["batch"], data["step"]
        self.lambda1, self.lambda2 = data["lambda1"], data["lambda2"]
        rng = data["rng"]
        self.generator.set_state(rng["generator"])
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.saved_step = self.step
        self.settings_changes = list(data.get("settings_changes", []))
        self.history = list(data.get("history", []))
        if changes:
            self._apply_changed_schedule()
            self.settings_changes.append({"step": self.step, "changed": changes})
        if dist.is_main():
            self.log.truncate_after(self.step)
        return False

    def _apply_changed_schedule(self) -> None:
        """Learning rates and lambdas at this point of the run as the (changed) settings give
        them: the exponential schedule and the lambda decay from epoch 0 to ``self.epoch``."""
        s, cfg = self.schedule, self.cfg
        gamma = (s.lr_end / s.lr) ** (1.0 / max(1, s.epochs))
        pairs = [(self.opt_w, self.sched_w, s.lr)]
        if self.opt_c:
            pairs.append((self.opt_c, self.sched_c, s.lr * cfg.c_lr_ratio))
        for optimizer, scheduler, base in pairs:
            scheduler.gamma = gamma
            scheduler.base_lrs = [base] * len(optimizer.param_groups)
            for group in optimizer.param_groups:
                group["initial_lr"] = base
                group["lr"] = base * gamma ** self.epoch
        if self.discs is not None:
            for group in self.opt_d.param_groups:
                group["lr"] = cfg.disc_lr
        decays = cfg.lambda_decay ** (self.epoch // cfg.lambda_every)
        self.lambda1, self.lambda2 = cfg.lambda1 * decays, cfg.lambda2 * decays

    # ----------------------------------------------------------------- losses
    def _task_loss(self, output: torch.Tensor, targets) -> torch.Tensor:
        return self.task.loss(output, targets)

    def _autocast(self):
        """The context of every forward pass: bfloat16 autocast with ``precision="bf16"``."""
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                              enabled=self.cfg.precision == "bf16")

    def _inputs(self, batch) -> tuple:
        """A batch's model inputs on the device, in the model's memory format, and targets."""
        inputs, targets = self.task.split(batch, self.device)
        inputs = tuple(t.contiguous(memory_format=self.memory_format) if t.dim() == 4 else t
                       for t in inputs)
        return inputs, targets

    def train_step(self, batch) -> Dict[str, float]:
        """One mini-batch of Algorithm 1 (task loss only for kinds other than rbconv)."""
        self.model.train()
        inputs, targets = self._inputs(batch)
        with self._autocast():
            output, taps = self.runner(*inputs)
            task = self._task_loss(output, targets)
        total = task
        logged = {"L_S": task.item(), "L_kernel": 0.0, "L_adv": 0.0, "D_loss": 0.0,
                  "L_distill": 0.0}
        if self.kind == "rbconv" and self.cfg.kernel_loss:
            lk = kernel_loss(self.model)
            total = total + self.lambda1 * lk
            logged["L_kernel"] = lk.item()
        if self.discs is not None or self.cfg.lambda_distill > 0:
            teacher_output, teacher_taps = self._teacher_forward(inputs)
        if self.discs is not None:
            adv, d_loss = self._adversarial(taps, teacher_taps)
            total = total + self.lambda2 * adv
            logged["L_adv"], logged["D_loss"] = adv.item(), d_loss
        if self.cfg.lambda_distill > 0:
            with self._autocast():
                distill = self.task.distill_loss(output, teacher_output)
            total = total + self.cfg.lambda_distill * distill
            logged["L_distill"] = distill.item()
        self._check_finite({"loss": total.item()}, logged)
        self.opt_w.zero_grad(set_to_none=True)
        if self.opt_c:
            self.opt_c.zero_grad(set_to_none=True)
        total.backward()
        norms = self.task.grad_norms(self.model)
        self._check_finite(norms, logged)
        logged.update(norms)
        signs = weight_signs(self.model)
        self.opt_w.step()
        if signs:
            logged["sign_flips"] = sign_changes(signs, weight_signs(self.model))
        if self.opt_c:
            self.opt_c.step()
        logged.update(self.task.output_stats(output.detach(), targets))
        return logged

    def _check_finite(self, values: Dict[str, float], context: Dict[str, float]) -> None:
        """Stop before a non-finite loss or gradient reaches the weights (binary layers would
        otherwise hide a NaN: sign(NaN) is a valid -1). When steps ran since the checkpoint on
        disk, it is marked as stopped by it, so that a resume may lower the learning rates and
        lambdas; when the checkpoint's own next step gives it, no learning rate can help."""
        for name, value in values.items():
            if math.isfinite(value):
                continue
            where = f"epoch {self.epoch + 1}, step {self.step + 1}"
            advice = "lower --lr or the lambdas (or check the data and the teacher)"
            if self.saved_step is None:
                kept = (f"no checkpoint of this stage was saved yet (nothing is lost); {advice} "
                        f"and rerun with --resume: this stage starts again with the new values")
            elif self.saved_step == self.step:
                largest = max(float(p.detach().abs().max()) for p in self.model.parameters())
                kept = (f"the checkpoint of step {self.saved_step} in {self.ckpt_path} gives it "
                        f"at its very next step, whatever the learning rate: the run diverged "
                        f"before that save (largest weight {largest:.3g}); train this stage "
                        f"again with a lower --lr into another --out")
            else:
                if dist.is_main():
                    data = load_checkpoint(self.ckpt_path)
                    data["stopped_by"] = f"{name} became {value} at {where}"
                    save_atomic(data, self.ckpt_path)
                kept = (f"the last checkpoint before it (step {self.saved_step}) is kept in "
                        f"{self.ckpt_path}; {advice} and rerun with --resume: it continues "
                        f"from there with the new values")
            context_text = ", ".join(f"{k}={v:.4g}" for k, v in context.items())
            raise TrainingError(f"{self.stage}: {name} became {value} at {where} "
                                f"({context_text}); {kept}")

    def _teacher_forward(self, inputs: tuple) -> tuple:
        """The frozen teacher's output and taps on the student's inputs."""
        with self._autocast(), torch.no_grad():
            return self.teacher.forward_taps(*inputs)

    def _adversarial(self, taps: dict, teacher_taps: dict) -> tuple:
        """Discriminator ascent steps (l = L..1) on the teacher's and the student's taps of one
        batch, then the student's adversarial loss."""
        cfg = self.cfg
        names = list(self.discs.keys())
        real, fake = {}, {}
        with self._autocast():
            for name in reversed(names):
                real[name], index = feature_vectors(_maps(teacher_taps[name]), cfg.disc_mode,
                                                    cfg.disc_samples, cfg.disc_normalize,
                                                    self.generator)
                fake[name], _ = feature_vectors(_maps(taps[name]), cfg.disc_mode,
                                                cfg.disc_samples, cfg.disc_normalize, index=index)
            d_loss = sum(discriminator_loss(self.discs[name], real[name], fake[name])
                         for name in reversed(names))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        dist.average_gradients(self.discs.parameters())
        self.opt_d.step()
        for p in self.discs.parameters():
            p.requires_grad_(False)
        with self._autocast():
            adv = sum(generator_loss(self.discs[name], fake[name], cfg.gan_loss)
                      for name in names)
        for p in self.discs.parameters():
            p.requires_grad_(True)
        return adv, d_loss.item()

    # ----------------------------------------------------------------- BN update
    def bn_update(self) -> None:
        """Train only the BN layers (affine + running statistics) with W and C fixed.

        Runs outside DDP (its gradient hooks expect every parameter to take part): the BN
        gradients and running statistics are averaged over ranks by hand.
        """
        bn_layers = [m for m in self.model.modules() if isinstance(m, nn.BatchNorm2d)]
        bn_params = [p for m in bn_layers for p in m.parameters()]
        bn_ids = {id(p) for p in bn_params}
        frozen = [p for p in self.model.parameters() if id(p) not in bn_ids]
        for p in frozen:
            p.requires_grad_(False)
        optimizer = torch.optim.SGD(bn_params, lr=self.cfg.bn_update_lr, momentum=0.9)
        self.task.bn_set.set_epoch(self.epoch)
        self.model.train()
        try:
            for batch in self._loader(self.task.bn_set, 0):
                inputs, targets = self._inputs(batch)
                with self._autocast():
                    loss = self._task_loss(self.model(*inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                dist.average_gradients(bn_params)
                optimizer.step()
            dist.average_buffers(self.model)
        finally:
            for p in frozen:
                p.requires_grad_(True)

    # ----------------------------------------------------------------- loop
    def _loader(self, dataset: Dataset, start_batch: int) -> DataLoader:
        per_rank = list(range(dist.rank(), len(dataset), dist.world_size()))
        usable = self._batches(dataset) * self.cfg.batch_size
        indices = per_rank[start_batch * self.cfg.batch_size:usable]
        return DataLoader(Subset(dataset, indices), batch_size=self.cfg.batch_size,
                          shuffle=False, num_workers=self.cfg.num_workers, drop_last=True,
                          persistent_workers=False,
                          worker_init_fn=_ignore_ctrl_c if self.cfg.num_workers else None)

    def _batches(self, dataset: Dataset) -> int:
        """Mini-batches per epoch, the same on every rank (the smallest rank's share)."""
        return len(dataset) // dist.world_size() // self.cfg.batch_size

    def batches_per_epoch(self) -> int:
        return self._batches(self.task.train_set)

    def run(self, resume: bool = False) -> Path:
        """Train the stage (or continue it with ``resume``); returns the checkpoint path.

        Ctrl-C is honoured in every window: during a batch the run stops at the batch's end,
        during the BN update, the evaluation, the save or the plot it stops once the checkpoint
        is written; either way ``Interrupted`` says how to continue (the stage may have
        finished)."""
        if self.ckpt_path.exists():
            refuse_existing(self.ckpt_path, resume)
            if self.restore(self.ckpt_path):
                return self.ckpt_path
        elif dist.is_main() and self.log.path.exists():
            self.log.truncate_after(0)        # rows of an earlier try that saved nothing
        if self.max_steps is not None and self.step >= self.max_steps:
            raise Interrupted(f"{self.stage}: the step budget is spent before this stage "
                              f"(step {self.step}); continue with --resume")
        self._started = time.perf_counter()
        title = self.task.title(self.kind, self.stage)
        with self._catch_ctrl_c():
            while self.epoch < self.schedule.epochs:
                self._run_epoch()
                if self.kind == "rbconv" and self.cfg.bn_update:
                    self.bn_update()
                self.epoch += 1
                self.batch = 0
                self.sched_w.step()
                if self.sched_c:
                    self.sched_c.step()
                if self.epoch % self.cfg.lambda_every == 0:
                    self.lambda1 *= self.cfg.lambda_decay
                    self.lambda2 *= self.cfg.lambda_decay
                # DDP broadcasts rank 0's BN statistics before each forward, but each rank's
                # last forward moved its own: average them so the replicas end the epoch equal
                dist.average_buffers(self.model)
                if not dist.replicas_identical(self.model):
                    raise TrainingError("distributed replicas diverged; check the launch")
                record = self.task.end_epoch(self.model, self.epoch) if dist.is_main() else None
                if record is not None:
                    self.history.append({"epoch": self.epoch, "step": self.step, **record})
                finished = self.epoch >= self.schedule.epochs
                self.save(finished=finished)
                if dist.is_main():
                    plot_losses(self.log.path, self.dir / "loss.png", f"{title}: training losses")
                    if self.history:
                        self.task.write_history(self.history, self.dir, title)
                if dist.any_rank(self._stop_requested):
                    state = ("finished, the next stage not started" if finished
                             else f"stopped after epoch {self.epoch}, step {self.step}")
                    raise Interrupted(f"{self.stage}: {state}; checkpoint saved to "
                                      f"{self.ckpt_path}; continue with --resume")
        return self.ckpt_path

    def _run_epoch(self) -> None:
        self.task.train_set.set_epoch(self.epoch)
        unit = self.task.budget_name.split("_")[0]
        with tqdm(total=self.batches_per_epoch(), initial=self.batch,
                  disable=not self.show_progress, unit="batch", dynamic_ncols=True,
                  desc=f"{self.stage} epoch {self.epoch + 1}/{self.schedule.epochs}") as bar:
            started, first_batch = time.perf_counter(), self.batch
            for batch in self._loader(self.task.train_set, self.batch):
                logged = self.train_step(batch)
                self.batch += 1
                self.step += 1
                if dist.is_main() and self.step % self.cfg.log_every == 0:
                    self.log.append({"step": self.step, "epoch": self.epoch + 1,
                                     "lr": self.opt_w.param_groups[0]["lr"],
                                     "lambda1": self.lambda1, "lambda2": self.lambda2, **logged,
                                     "elapsed_s": time.perf_counter() - self._started})
                done = (self.batch - first_batch) * self.cfg.batch_size
                rate = done / max(1e-9, time.perf_counter() - started)
                bar.set_postfix({"L_S": f"{logged['L_S']:.3f}", f"{unit}_s": f"{rate:.1f}"})
                bar.update(1)
                budget_hit = self.max_steps is not None and self.step >= self.max_steps
                if dist.any_rank(self._stop_requested or budget_hit):
                    self.save(finished=False)
                    raise Interrupted(f"{self.stage}: stopped at epoch {self.epoch + 1}, step "
                                      f"{self.step}; checkpoint saved to {self.ckpt_path}; "
                                      f"continue with --resume")

    @contextmanager
    def _catch_ctrl_c(self):
        """Turn Ctrl-C into a request to stop at the next batch boundary (after saving)."""
        def handler(signum, frame):
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not in the main thread
            previous = None
        try:
            yield
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
