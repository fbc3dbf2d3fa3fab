"""The classification task of the trainer core (the paper's Tables 2-4): labelled images,
softmax cross-entropy, the taps of every binarized unit, top-1 / top-5 evaluation, and the
chain that trains the full-precision teacher and the students on it.

Teacher: every student (xnor, bireal, rbcn) starts from the weights of a finished
full-precision classifier of the same backbone, and rbcn's discriminators compare its taps
with the teacher's (the paper's "feature maps of the full-precision model"). The teacher is
either trained first by the chain into ``out/fp/`` (or reused from there when finished), or
given as a checkpoint (``teacher_path``), which is then copied into ``out/fp/last.pt``; an
``out`` that already holds another teacher is refused (its students learned from that one).

Per epoch the trainer records the training error (on a fixed seeded subset of the training
images, without augmentation) and the test error, top-1 and top-5, of the model as it is after
the epoch (and its BN update): ``epochs.csv`` and ``errors.png`` in the stage folder
(the paper's Figure 2), kept in the checkpoint so a resumed run goes on with the same record.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rbsf.binary import QuantConv2d, reset_scales  # noqa: E402
from rbsf.checkpoint import FORMAT, CheckpointError, load_checkpoint  # noqa: E402
from rbsf.data.classification import (NORMALIZATION, ClassificationSet, ImageSet,  # noqa: E402
                                      Transform, fingerprint, load_split, seeded_subset)
from rbsf.files import atomic_open, check_writable_dir, save_atomic  # noqa: E402
from rbsf.models.backbones import Classifier, build_backbone  # noqa: E402
from rbsf.train import distributed as dist  # noqa: E402
from rbsf.train.chain import load_teacher, same_weights  # noqa: E402
from rbsf.train.config import CLS_STAGE_KIND, CLS_STAGES, ClsConfig  # noqa: E402
from rbsf.train.logs import training_seconds  # noqa: E402
from rbsf.train.trainer import (CoreTrainer, TrainingError, check_resumable,  # noqa: E402
                                refuse_existing)

METHOD_NAMES = {"fp": "Full precision", "xnor": "XNOR", "bireal": "Bi-Real", "rbcn": "RBCN"}
LOG_COLUMNS = ["step", "epoch", "L_S", "L_kernel", "L_adv", "D_loss", "L_distill", "lr",
               "lambda1", "lambda2", "batch_top1", "grad_stem", "grad_binary", "grad_fc",
               "sign_flips", "elapsed_s"]
EPOCH_COLUMNS = ["epoch", "step", "train_error", "test_error", "test_top5_error"]


# ---------------------------------------------------------------------------------- data
class ClsData:
    """The training and test images of one run, and how items are made from them."""

    def __init__(self, config: ClsConfig, root: str):
        load_size = round(config.image_size * 8 / 7) if config.image_size else 0
        train = load_split(config.dataset, root, "train", load_size)
        test = load_split(config.dataset, root, "test", load_size)
        self.train = seeded_subset(train, config.train_samples, config.seed)
        self.test = seeded_subset(test, config.test_samples, config.seed)
        self.train_eval = seeded_subset(self.train, config.eval_train_samples, config.seed + 2)
        mean, std = NORMALIZATION[config.dataset]
        self.transform = Transform(mean, std, config.image_size, config.crop_padding,
                                   config.flip)
        self.num_classes = len(train.classes)
        self.channels = train.channels
        self.fingerprint = fingerprint(self.train, self.test)


def evaluate(model: nn.Module, images: ImageSet, transform: Transform, batch_size: int = 256,
             device: str = "cpu") -> Dict[str, float]:
    """Top-1 and top-5 accuracy of ``model`` (eval mode, no augmentation) on ``images``."""
    was_training = model.training
    model.eval()
    top1 = top5 = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            indices = range(start, min(start + batch_size, len(images)))
            x = torch.stack([transform(images.image(i)) for i in indices]).to(device)
            labels = torch.as_tensor(images.labels[start:start + len(indices)]).to(device)
            ranked = model(x).topk(min(5, len(images.classes)), dim=1).indices
            hits = ranked == labels[:, None]
            top1 += int(hits[:, 0].sum())
            top5 += int(hits.any(dim=1).sum())
    model.train(was_training)
    return {"top1": top1 / len(images), "top5": top5 / len(images), "images": len(images)}


# ---------------------------------------------------------------------------------- task
class ClassificationTask:
    """Images and cross-entropy for the trainer core; logs the batch's top-1 accuracy and the
    gradient norms of the stem, of all binarized convolutions together and of the classifier."""

    data_hint = "--dataset, --root"
    budget_name = "images_seen"
    log_columns = LOG_COLUMNS

    def __init__(self, config: ClsConfig, data: ClsData, device: str = "cpu"):
        self.cfg = config
        self.data = data
        self.device = device
        self.train_set = ClassificationSet(data.train, data.transform, config.seed)
        bn_items = min(len(data.train),
                       config.bn_update_batches * config.batch_size * dist.launch_size())
        self.bn_set = ClassificationSet(data.train, data.transform, config.seed + 1, bn_items)
        self.fingerprint = data.fingerprint

    def build_model(self, kind: str) -> Classifier:
        return build_backbone(self.cfg.arch, kind, self.cfg.widths, self.data.num_classes,
                              imagenet=self.cfg.image_size > 64, c_mode=self.cfg.c_mode,
                              in_channels=self.data.channels)

    def init_student(self, model: Classifier, teacher: Classifier) -> None:
        init_from_teacher(model, teacher)

    def tap_channels(self, model: Classifier) -> Dict[str, int]:
        return model.tap_channels()

    def split(self, batch, device: str) -> Tuple[tuple, torch.Tensor]:
        images, labels = batch
        return (images.to(device),), labels.to(device)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels)

    def distill_loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """KL divergence of the student's class distribution from the teacher's (Hinton's
        knowledge distillation at temperature 1)."""
        return F.kl_div(F.log_softmax(logits.float(), dim=1),
                        F.log_softmax(teacher_logits.float(), dim=1), log_target=True,
                        reduction="batchmean")

    def grad_norms(self, model: Classifier) -> Dict[str, float]:
        def norm(params: Iterable[torch.Tensor]) -> float:
            grads = [p.grad.norm() for p in params if p.grad is not None]
            return float(torch.stack(grads).norm()) if grads else 0.0

        binary = [m.weight for m in model.modules() if isinstance(m, QuantConv2d)]
        return {"grad_stem": norm([model.stem[0].weight]), "grad_binary": norm(binary),
                "grad_fc": norm([model.fc.weight])}

    def output_stats(self, logits: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
        return {"batch_top1": (logits.argmax(1) == labels).float().mean().item()}

    def describe(self, fingerprint: dict) -> str:
        return (f"{fingerprint['dataset']}, {fingerprint['train_images']} training and "
                f"{fingerprint['test_images']} test images, fingerprint {fingerprint['sha256']}")

    def title(self, kind: str, stage: str) -> str:
        return f"{METHOD_NAMES[stage]} {self.cfg.arch} {'-'.join(map(str, self.cfg.widths))}"

    def end_epoch(self, model: Classifier, epoch: int) -> dict:
        batch, device = self.cfg.eval_batch, self.device
        train = evaluate(model, self.data.train_eval, self.data.transform, batch, device)
        test = evaluate(model, self.data.test, self.data.transform, batch, device)
        return {"train_error": 1 - train["top1"], "test_error": 1 - test["top1"],
                "test_top5_error": 1 - test["top5"]}

    def write_history(self, history: List[dict], folder: Path, title: str) -> None:
        with atomic_open(folder / "epochs.csv", "w") as handle:
            writer = csv.DictWriter(handle, EPOCH_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v)
                              for k, v in row.items()} for row in history)
        plot_errors({title: history}, folder / "errors.png", "training and test error")


def plot_errors(curves: Dict[str, List[dict]], path: Path, title: str) -> None:
    """Training (dashed) and test (solid) top-1 error per epoch of each named history, as the
    paper's Figure 2."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, history) in enumerate(curves.items()):
        color = f"C{i}"
        epochs = [row["epoch"] for row in history]
        ax.plot(epochs, [100 * row["train_error"] for row in history], "--", color=color,
                label=f"{name} training")
        ax.plot(epochs, [100 * row["test_error"] for row in history], "-", color=color,
                marker="o", markersize=3, label=f"{name} test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 error (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------- models
def init_from_teacher(model: Classifier, teacher: Classifier) -> None:
    """A student's weights from the full-precision teacher (latent W = teacher's weights, every
    C then from them); the backbones must match (arch, widths, classes)."""
    missing, unexpected = model.load_state_dict(teacher.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("weight_quantizer.C")]
    if missing or unexpected:
        raise TrainingError(f"the teacher's weights do not fit this backbone (missing "
                            f"{missing[:3]}, unexpected {unexpected[:3]}); pass a teacher of "
                            f"the same --arch and --stages")
    reset_scales(model)


def classifier_from_checkpoint(data: dict, source: str) -> Classifier:
    """The classifier stored in a checkpoint of ours (``CheckpointError`` otherwise)."""
    config = data.get("model_config") if data.get("format") == FORMAT else None
    if not isinstance(config, dict) or "num_classes" not in config:
        raise CheckpointError(f"{source} is not a classifier checkpoint of tools/train_cls.py")
    net = build_backbone(**config)
    try:
        net.load_state_dict(data["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not match its model config {config}: "
                              f"{str(exc).splitlines()[0]}") from exc
    return net


def load_classifier(path: Path) -> Classifier:
    """A classifier (any kind) from a checkpoint file, in eval mode."""
    return classifier_from_checkpoint(load_checkpoint(path), str(path)).eval()


def load_cls_teacher(path: Path, config: ClsConfig, data: ClsData) -> Classifier:
    """A finished full-precision classifier that fits ``config`` and ``data``;
    ``TrainingError`` naming what differs otherwise."""
    net = load_teacher(path, classifier_from_checkpoint,
                       lambda p: "finish it with tools/train_cls.py --kind fp --resume")
    have = net.config()
    want = {"name": config.arch, "stages": list(config.widths),
            "num_classes": data.num_classes, "in_channels": data.channels}
    differs = [f"{k} {have[k]} (this run: {v})" for k, v in want.items() if have[k] != v]
    if differs:
        raise TrainingError(f"teacher {path} has {', '.join(differs)}; pass the --arch, "
                            f"--stages and --dataset it was trained with, or another teacher")
    return net.eval()


# ---------------------------------------------------------------------------------- chain
def cls_stages(kind: str, teacher_path: Optional[Path]) -> List[str]:
    """The stages a run of method ``kind`` trains: the teacher first unless one is given."""
    stages = [kind] if kind == "fp" or teacher_path is not None else ["fp", kind]
    return [s for s in CLS_STAGES if s in stages]


def check_cls_chain(config: ClsConfig, stages: List[str], out_dir: Path,
                    teacher_path: Optional[Path], resume: bool) -> None:
    """Refuse what cannot run before any data is read: bad settings, an unwritable ``out``,
    a stage checkpoint in the way without ``resume`` or one of other settings."""
    config.check(stages, dist.launch_size())
    check_writable_dir(out_dir, "--out")
    if teacher_path is not None and not Path(teacher_path).is_file():
        raise TrainingError(f"--teacher {teacher_path} does not exist; pass a finished "
                            f"full-precision checkpoint of tools/train_cls.py")
    for stage in stages:
        path = Path(out_dir) / stage / "last.pt"
        if path.exists():
            refuse_existing(path, resume)
            check_resumable(load_checkpoint(path), path, config, stage)


def train_cls_chain(config: ClsConfig, stages: List[str], data: ClsData, out_dir: Path,
                    device: str = "cpu", teacher_path: Optional[Path] = None,
                    resume: bool = False, max_steps: Optional[int] = None,
                    show_progress: bool = True) -> Dict[str, Path]:
    """Train ``stages`` in order into ``out_dir/<stage>/``; students start from (and rbcn
    distils from) the teacher of ``teacher_path`` or of ``out_dir/fp/last.pt``. Returns the
    checkpoint of every stage, the teacher's included."""
    out_dir = Path(out_dir)
    check_cls_chain(config, stages, out_dir, teacher_path, resume)
    held = out_dir / "fp" / "last.pt"
    results: Dict[str, Path] = {}
    if teacher_path is not None:
        teacher = load_cls_teacher(teacher_path, config, data)
        if held.exists():
            if not same_weights(load_classifier(held), teacher):
                raise TrainingError(f"--out {out_dir} already holds a teacher ({held}) that is "
                                    f"not --teacher {teacher_path}; its students learned from "
                                    f"that one: choose another --out, or drop --teacher")
        elif dist.is_main():
            save_atomic({"format": FORMAT, "model_config": teacher.config(),
                         "model": teacher.state_dict(), "stage": "fp", "finished": True,
                         "source": str(teacher_path)}, held)
        dist.barrier()
        results["fp"] = held
    for stage in stages:
        teacher = None
        if stage != "fp":
            if not held.exists():
                raise TrainingError(f"stage {stage} needs a teacher and {held} does not exist; "
                                    f"train one first (--kind fp) or pass --teacher CKPT")
            teacher = load_cls_teacher(held, config, data)
        task = ClassificationTask(config, data, dist.local_device(device))
        trainer = CoreTrainer(task, config, stage, CLS_STAGE_KIND[stage], out_dir, device,
                              teacher, max_steps, show_progress)
        results[stage] = trainer.run(resume=resume)
        if max_steps is not None:
            max_steps = max(0, max_steps - trainer.step)
    return results


def stage_metrics(path: Path, data: ClsData, config: ClsConfig, device: str = "cpu") -> dict:
    """Test top-1 / top-5 of the model in a stage checkpoint, with its budget and record."""
    stored = load_checkpoint(path)
    net = classifier_from_checkpoint(stored, str(path)).to(device)
    scores = evaluate(net, data.test, data.transform, config.eval_batch, device)
    history = stored.get("history", [])
    return {**scores, "checkpoint": str(path), "kind": net.kind,
            "budget": {"steps": stored.get("step"), "batch_size": config.batch_size,
                       "images_seen": stored.get("budget", {}).get("images_seen"),
                       "epochs": stored.get("epoch"),
                       "seconds": training_seconds(path.parent / "log.csv")},
            "history": history, "source": stored.get("source")}


def recalibrated(path: Path, data: ClsData, config: ClsConfig, device: str = "cpu",
                 images: int = 2048) -> Dict[str, float]:
    """Test top-1 / top-5 of the model in ``path`` after re-estimating the statistics of every
    BN layer on ``images`` training images (no augmentation; a cumulative average, affine
    parameters untouched): a diagnostic of how much error stale BN statistics cause."""
    net = load_classifier(path).to(device)
    layers = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    net.train()
    count = min(images, len(data.train))
    with torch.no_grad():
        for start in range(0, count, config.eval_batch):
            indices = range(start, min(start + config.eval_batch, count))
            net(torch.stack([data.transform(data.train.image(i)) for i in indices]).to(device))
    return evaluate(net, data.test, data.transform, config.eval_batch, device)
