"""One trainer for the three stages: teacher (fp), xnor and rbsf (Algorithm 1 of RBCN).

Per mini-batch of the ``rbsf`` stage (Algorithm 1):

1. forward the binary student (conv with sign(W) (.) C*) and, without gradients, the frozen
   teacher, both returning the feature maps of every binarized layer;
2. for l = L ... 1: one ascent step of discriminator D^l on log D(R^l) + log(1 - D(T^l)) with
   the student maps detached;
3. loss = L_S + lambda1 * L_kernel + lambda2 * L_adv (with the updated discriminators);
   one backward gives dW and dC at the same point; W (and every other weight) is updated
   first with lr eta1, then C with its own lr eta2.

After each epoch, the BN layers are trained for ``bn_update_batches`` mini-batches on the task
loss with every other parameter fixed (the "BN update" of the paper). Then lambda1 and lambda2
are decayed on their schedule and the learning rates follow their exponential schedule.

Never lose work: the checkpoint (model, discriminators, optimisers, schedules, lambdas, RNG
states, position) is written atomically after each epoch and when stopped (Ctrl-C or a step
budget); resuming continues exactly where the run stopped. A non-finite loss stops the run
with a clear message and leaves the last good checkpoint untouched.
"""
from __future__ import annotations

import math
import random
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from rbsf.binary import RBConv2d, binary_convs, kernel_loss
from rbsf.checkpoint import FORMAT, load_checkpoint
from rbsf.data import PairConfig, PairDataset, Sequence, balanced_labels
from rbsf.discriminator import (build_discriminators, discriminator_loss, feature_vectors,
                                generator_loss)
from rbsf.errors import Interrupted, RBSFError
from rbsf.files import save_atomic
from rbsf.models.siamfc import MODEL_NAMES, TAP_LAYERS, SiamFCNet
from rbsf.train import distributed as dist
from rbsf.train.config import STAGE_KIND, TrainConfig
from rbsf.train.logs import CsvLog, plot_losses
from rbsf.train.losses import balanced_logistic_loss

RESUMABLE_CHANGES = {"num_workers", "log_every"}


class TrainingError(RBSFError, RuntimeError):
    """A run cannot go on (non-finite loss, incompatible checkpoint); the message says why."""


def _flatten(config: dict, prefix: str = "") -> dict:
    """{"stages": {"rbsf": {"epochs": 2}}} -> {"stages.rbsf.epochs": 2}."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


class _Taps(nn.Module):
    """Adapter so DDP wraps the call that returns the response *and* the feature taps."""

    def __init__(self, net: SiamFCNet):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, x: torch.Tensor):
        return self.net.forward_taps(z, x)


class Trainer:
    """Trains one stage into ``out_dir/<stage>/`` (last.pt, log.csv, loss.png).

    ``log.csv`` has one row per step: the losses, lr, lambdas, response std, per-layer gradient
    norms and ``elapsed_s``, the wall seconds since this process started the stage."""

    def __init__(self, config: TrainConfig, stage: str, sequences: List[Sequence],
                 out_dir: Path, device: str = "cpu", teacher: Optional[SiamFCNet] = None,
                 max_steps: Optional[int] = None, show_progress: bool = True):
        self.cfg = config
        self.stage = stage
        self.kind = STAGE_KIND[stage]
        self.schedule = config.stage(stage)
        self.dir = Path(out_dir) / stage
        self.ckpt_path = self.dir / "last.pt"
        self.log = CsvLog(self.dir / "log.csv")
        self.device = dist.local_device(device)
        self.max_steps = max_steps
        self.show_progress = show_progress and dist.is_main()
        self._stop_requested = False
        self._started = time.perf_counter()

        # Binary layers' backward passes produce denormal floats; on a CPU each one costs a
        # slow micro-code path (XNOR / RB-SF steps ran 10-40x slower). Flush them to zero.
        torch.set_flush_denormal(True)
        torch.manual_seed(config.seed)
        self.model = SiamFCNet(self.kind, config.c_mode, config.width).to(self.device)
        self.teacher = None
        if stage != "teacher":
            if teacher is None:
                raise TrainingError(f"stage {stage} needs a trained teacher")
            self.model.load_teacher_state(teacher.state_dict())
            if stage == "rbsf":
                self.teacher = teacher.to(self.device).eval()
                for p in self.teacher.parameters():
                    p.requires_grad_(False)
        self.runner = dist.wrap(_Taps(self.model), self.device)

        scales = [m.C for _, m in binary_convs(self.model) if isinstance(m, RBConv2d)]
        scale_ids = {id(p) for p in scales}
        weights = [p for p in self.model.parameters() if id(p) not in scale_ids]
        s = self.schedule
        self.opt_w = torch.optim.SGD(weights, lr=s.lr, momentum=config.momentum,
                                     weight_decay=config.weight_decay)
        self.opt_c = (torch.optim.SGD(scales, lr=s.lr * config.c_lr_ratio,
                                      momentum=config.momentum) if scales else None)
        gamma = (s.lr_end / s.lr) ** (1.0 / max(1, s.epochs))
        self.sched_w = torch.optim.lr_scheduler.ExponentialLR(self.opt_w, gamma)
        self.sched_c = (torch.optim.lr_scheduler.ExponentialLR(self.opt_c, gamma)
                        if self.opt_c else None)

        self.discs = None
        if stage == "rbsf" and config.gan:
            channels = {name: getattr(self.model.backbone, name)[0].out_channels
                        for name in TAP_LAYERS}
            self.discs = build_discriminators(channels, config.disc_hidden).to(self.device)
            self.opt_d = torch.optim.Adam(self.discs.parameters(), lr=config.disc_lr,
                                          betas=(0.5, 0.999))

        pair_cfg = PairConfig(exemplar_size=config.exemplar_size,
                              instance_size=config.instance_size,
                              search_size=config.search_size)
        self.pairs = PairDataset(sequences, pair_cfg, s.pairs_per_epoch, seed=config.seed)
        self.bn_pairs = PairDataset(sequences, pair_cfg,
                                    config.bn_update_batches * config.batch_size,
                                    seed=config.seed + 1)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.lambda1 = config.lambda1
        self.lambda2 = config.lambda2
        self.epoch = 0
        self.batch = 0
        self.step = 0
        self._labels: Dict[int, tuple] = {}

    # ----------------------------------------------------------------- state
    def state(self, finished: bool) -> dict:
        """Everything needed to continue the run exactly, plus the model in load_model's format."""
        return {
            "format": FORMAT, "model_config": self.model.config(), "model": self.model.state_dict(),
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
            "budget": {"pairs_seen": self.step * self.cfg.batch_size * dist.world_size()},
        }

    def save(self, finished: bool = False) -> None:
        if dist.is_main():
            save_atomic(self.state(finished), self.ckpt_path)
        dist.barrier()

    def restore(self, path: Path) -> bool:
        """Load a training checkpoint; returns whether that stage had already finished."""
        data = load_checkpoint(path)
        if data.get("stage") != self.stage or "opt_w" not in data:
            raise TrainingError(f"{path} is not a {self.stage} training checkpoint; "
                                f"remove it or pick another --out")
        if data["model_config"] != self.model.config():
            raise TrainingError(f"{path} was trained with model {data['model_config']}, this run "
                                f"asks for {self.model.config()}; use the same preset/options")
        saved, current = _flatten(data["train_config"]), _flatten(self.cfg.to_dict())
        changed = sorted(k for k, v in current.items()
                         if k not in RESUMABLE_CHANGES and saved.get(k) != v)
        if changed:
            raise TrainingError(f"{path} was trained with other settings ({', '.join(changed)}); "
                                f"resume with the same preset and options, or use another --out")
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
        if dist.is_main():
            self.log.truncate_after(self.step)
        return bool(data["finished"])

    # ----------------------------------------------------------------- losses
    def labels(self, size: int) -> tuple:
        if size not in self._labels:
            labels, weights = balanced_labels(size)
            self._labels[size] = (labels.to(self.device), weights.to(self.device))
        return self._labels[size]

    def task_loss(self, response: torch.Tensor) -> torch.Tensor:
        labels, weights = self.labels(response.size(-1))
        return balanced_logistic_loss(response, labels, weights)

    def train_step(self, z: torch.Tensor, x: torch.Tensor) -> Dict[str, float]:
        """One mini-batch of Algorithm 1 (task loss only for teacher / xnor)."""
        self.model.train()
        response, taps = self.runner(z, x)
        task = self.task_loss(response)
        total = task
        logged = {"L_S": task.item(), "L_kernel": 0.0, "L_adv": 0.0, "D_loss": 0.0}
        if self.kind == "rbconv" and self.cfg.kernel_loss:
            lk = kernel_loss(self.model)
            total = total + self.lambda1 * lk
            logged["L_kernel"] = lk.item()
        if self.discs is not None:
            adv, d_loss = self.adversarial(z, x, taps)
            total = total + self.lambda2 * adv
            logged["L_adv"], logged["D_loss"] = adv.item(), d_loss
        self._check_finite({"loss": total.item()}, logged)
        self.opt_w.zero_grad(set_to_none=True)
        if self.opt_c:
            self.opt_c.zero_grad(set_to_none=True)
        total.backward()
        norms = self.grad_norms()
        self._check_finite(norms, logged)
        logged.update(norms)
        self.opt_w.step()
        if self.opt_c:
            self.opt_c.step()
        logged["response_std"] = response.detach().std().item()
        return logged

    def _check_finite(self, values: Dict[str, float], context: Dict[str, float]) -> None:
        """Stop before a non-finite loss or gradient reaches the weights (binary layers would
        otherwise hide a NaN: sign(NaN) is a valid -1)."""
        for name, value in values.items():
            if not math.isfinite(value):
                raise TrainingError(
                    f"{self.stage}: {name} became {value} at epoch {self.epoch + 1}, step "
                    f"{self.step + 1} ({', '.join(f'{k}={v:.4g}' for k, v in context.items())});"
                    f" the last good checkpoint is kept at {self.ckpt_path}. Lower --lr or the "
                    f"lambdas, or check the data and the teacher, then rerun with --resume")

    def adversarial(self, z: torch.Tensor, x: torch.Tensor, taps) -> tuple:
        """Discriminator ascent steps (l = L..1), then the student's adversarial loss."""
        with torch.no_grad():
            _, teacher_taps = self.teacher.forward_taps(z, x)
        cfg = self.cfg
        real, fake = {}, {}
        for name in reversed(TAP_LAYERS):
            real[name], index = feature_vectors(teacher_taps[name], cfg.disc_mode,
                                                cfg.disc_samples, cfg.disc_normalize,
                                                self.generator)
            fake[name], _ = feature_vectors(taps[name], cfg.disc_mode, cfg.disc_samples,
                                            cfg.disc_normalize, index=index)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = sum(discriminator_loss(self.discs[name], real[name], fake[name])
                     for name in reversed(TAP_LAYERS))
        d_loss.backward()
        dist.average_gradients(self.discs.parameters())
        self.opt_d.step()
        for p in self.discs.parameters():
            p.requires_grad_(False)
        adv = sum(generator_loss(self.discs[name], fake[name], cfg.gan_loss)
                  for name in TAP_LAYERS)
        for p in self.discs.parameters():
            p.requires_grad_(True)
        return adv, d_loss.item()

    def grad_norms(self) -> Dict[str, float]:
        backbone = self.model.backbone
        return {f"grad_{n}": (getattr(backbone, n)[0].weight.grad.norm().item()
                              if getattr(backbone, n)[0].weight.grad is not None else 0.0)
                for n in ("conv1", "conv2", "conv3", "conv4", "conv5")}

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
        self.bn_pairs.set_epoch(self.epoch)
        self.model.train()
        try:
            for z, x in self._loader(self.bn_pairs, 0):
                z, x = z.to(self.device), x.to(self.device)
                loss = self.task_loss(self.model(z, x))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                dist.average_gradients(bn_params)
                optimizer.step()
            dist.average_buffers(self.model)
        finally:
            for p in frozen:
                p.requires_grad_(True)

    # ----------------------------------------------------------------- loop
    def _loader(self, dataset: PairDataset, start_batch: int) -> DataLoader:
        per_rank = list(range(dist.rank(), len(dataset), dist.world_size()))
        usable = len(per_rank) // self.cfg.batch_size * self.cfg.batch_size
        indices = per_rank[start_batch * self.cfg.batch_size:usable]
        return DataLoader(Subset(dataset, indices), batch_size=self.cfg.batch_size,
                          shuffle=False, num_workers=self.cfg.num_workers, drop_last=True,
                          persistent_workers=False)

    def batches_per_epoch(self) -> int:
        return len(range(dist.rank(), len(self.pairs), dist.world_size())) // self.cfg.batch_size

    def run(self, resume: bool = False) -> Path:
        """Train the stage (or continue it with ``resume``); returns the checkpoint path."""
        if self.ckpt_path.exists():
            if not resume:
                raise TrainingError(f"{self.ckpt_path} exists; pass --resume to continue it or "
                                    f"choose another --out")
            if self.restore(self.ckpt_path):
                return self.ckpt_path
        self._started = time.perf_counter()
        with self._catch_ctrl_c():
            while self.epoch < self.schedule.epochs:
                self._run_epoch()
                if self.stage == "rbsf" and self.cfg.bn_update:
                    self.bn_update()
                self.epoch += 1
                self.batch = 0
                self.sched_w.step()
                if self.sched_c:
                    self.sched_c.step()
                if self.epoch % self.cfg.lambda_every == 0:
                    self.lambda1 *= self.cfg.lambda_decay
                    self.lambda2 *= self.cfg.lambda_decay
                if not dist.replicas_identical(self.model):
                    raise TrainingError("distributed replicas diverged; check the launch")
                self.save(finished=self.epoch >= self.schedule.epochs)
                if dist.is_main():
                    plot_losses(self.log.path, self.dir / "loss.png",
                                f"{MODEL_NAMES[self.kind]} ({self.stage} stage): training losses")
        return self.ckpt_path

    def _run_epoch(self) -> None:
        self.pairs.set_epoch(self.epoch)
        with tqdm(total=self.batches_per_epoch(), initial=self.batch,
                  disable=not self.show_progress, unit="batch", dynamic_ncols=True,
                  desc=f"{self.stage} epoch {self.epoch + 1}/{self.schedule.epochs}") as bar:
            started, first_batch = time.perf_counter(), self.batch
            for z, x in self._loader(self.pairs, self.batch):
                logged = self.train_step(z.to(self.device), x.to(self.device))
                self.batch += 1
                self.step += 1
                if dist.is_main() and self.step % self.cfg.log_every == 0:
                    self.log.append({"step": self.step, "epoch": self.epoch + 1,
                                     "lr": self.opt_w.param_groups[0]["lr"],
                                     "lambda1": self.lambda1, "lambda2": self.lambda2, **logged,
                                     "elapsed_s": time.perf_counter() - self._started})
                done = (self.batch - first_batch) * self.cfg.batch_size
                rate = done / max(1e-9, time.perf_counter() - started)
                bar.set_postfix(L_S=f"{logged['L_S']:.3f}", pairs_s=f"{rate:.1f}")
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
