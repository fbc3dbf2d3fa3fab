"""The tracking task of the trainer core: SiamFC pairs, the balanced logistic loss, the taps
of conv2..conv5, and ``Trainer``, the tracking trainer of the three stages teacher (fp), xnor
and rbsf (``rbsf.train.config.STAGE_KIND``)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from rbsf.data import PairConfig, PairDataset, Sequence, data_fingerprint, pair_labels
from rbsf.models.siamfc import MODEL_NAMES, TAP_LAYERS, SiamFCNet
from rbsf.train.config import STAGE_KIND, TrainConfig
from rbsf.train.logs import COLUMNS
from rbsf.train.losses import balanced_logistic_loss
from rbsf.train.trainer import CoreTrainer

CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")


class TrackingTask:
    """SiamFC pairs of ``sequences`` (a fresh draw each epoch; ``negative_pairs`` of them
    negative) and the balanced logistic loss on the response map; logs the response std and
    the gradient norm of every conv."""

    data_hint = "--data, --subset"
    budget_name = "pairs_seen"
    log_columns = COLUMNS

    def __init__(self, config: TrainConfig, sequences: List[Sequence], epoch_pairs: int):
        self.cfg = config
        pair_cfg = PairConfig(exemplar_size=config.exemplar_size,
                              instance_size=config.instance_size,
                              search_size=config.search_size,
                              negative_pairs=config.negative_pairs)
        self.train_set = PairDataset(sequences, pair_cfg, epoch_pairs, seed=config.seed)
        self.bn_set = PairDataset(sequences, pair_cfg,
                                  config.bn_update_batches * config.batch_size,
                                  seed=config.seed + 1)
        self.fingerprint = data_fingerprint(sequences)

    def build_model(self, kind: str) -> SiamFCNet:
        return SiamFCNet(kind, self.cfg.c_mode, self.cfg.width)

    def init_student(self, model: SiamFCNet, teacher: SiamFCNet) -> None:
        model.load_teacher_state(teacher.state_dict())

    def tap_channels(self, model: SiamFCNet) -> Dict[str, int]:
        return {name: getattr(model.backbone, name)[0].out_channels for name in TAP_LAYERS}

    def split(self, batch, device: str) -> Tuple[tuple, torch.Tensor]:
        """((z, x), positive): the pair labels (1 positive, 0 negative) are the targets."""
        z, x, positive = batch
        return (z.to(device), x.to(device)), positive.to(device)

    def loss(self, response: torch.Tensor, targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The balanced logistic loss; ``targets``: the pair labels (default: all positive)."""
        if targets is None:
            targets = torch.ones(response.size(0), device=response.device)
        labels, weights = pair_labels(targets, response.size(-1))
        return balanced_logistic_loss(response, labels, weights)

    def distill_loss(self, response: torch.Tensor, teacher_response: torch.Tensor) -> torch.Tensor:
        """Logistic loss of the student's response against the teacher's probabilities
        (sigmoid of its response) at every position: minimal where the two responses agree."""
        return F.binary_cross_entropy_with_logits(response.float(),
                                                  torch.sigmoid(teacher_response.float()))

    def grad_norms(self, model: SiamFCNet) -> Dict[str, float]:
        backbone = model.backbone
        return {f"grad_{n}": (getattr(backbone, n)[0].weight.grad.norm().item()
                              if getattr(backbone, n)[0].weight.grad is not None else 0.0)
                for n in CONVS}

    def output_stats(self, response: torch.Tensor, targets=None) -> Dict[str, float]:
        return {"response_std": response.std().item()}

    def describe(self, fingerprint: dict) -> str:
        return (f"{fingerprint['sequences']} sequences, {fingerprint['frames']} frames, "
                f"fingerprint {fingerprint['sha256']}")

    def title(self, kind: str, stage: str) -> str:
        return f"{MODEL_NAMES[kind]} ({stage} stage)"

    def end_epoch(self, model: SiamFCNet, epoch: int) -> None:
        """Tracking is evaluated by ``tools/eval.py`` on benchmarks, not per epoch."""
        return None

    def write_history(self, history: List[dict], folder: Path, title: str) -> None:
        """Nothing to write: tracking keeps no per-epoch record."""


class Trainer(CoreTrainer):
    """Trains one tracking stage into ``out_dir/<stage>/`` (last.pt, log.csv, loss.png).

    ``log.csv`` has one row per step: the losses, lr, lambdas, response std, per-layer gradient
    norms, the students' sign flips and ``elapsed_s``, the wall seconds since this process
    started the stage."""

    def __init__(self, config: TrainConfig, stage: str, sequences: List[Sequence],
                 out_dir: Path, device: str = "cpu", teacher: Optional[SiamFCNet] = None,
                 max_steps: Optional[int] = None, show_progress: bool = True,
                 init: Optional[SiamFCNet] = None):
        task = TrackingTask(config, sequences, config.stage(stage).pairs_per_epoch)
        super().__init__(task, config, stage, STAGE_KIND[stage], out_dir, device, teacher,
                         max_steps, show_progress, init)

    @property
    def pairs(self) -> PairDataset:
        """The training pairs of the current epoch."""
        return self.task.train_set

    @property
    def bn_pairs(self) -> PairDataset:
        return self.task.bn_set

    def task_loss(self, response: torch.Tensor,
                  positive: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The balanced logistic loss of a response map, ``positive`` its pair labels (every
        loss of the run goes through here, the BN update's included)."""
        return self.task.loss(response, positive)

    def _task_loss(self, output: torch.Tensor, targets) -> torch.Tensor:
        return self.task_loss(output, targets)

    def adversarial(self, z: torch.Tensor, x: torch.Tensor, taps) -> tuple:
        """Discriminator ascent steps (l = L..1), then the student's adversarial loss."""
        _, teacher_taps = self._teacher_forward((z, x))
        return self._adversarial(taps, teacher_taps)
