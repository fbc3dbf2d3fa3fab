"""The stage chain teacher -> xnor -> rbsf, the data it trains on, and teacher loading.

``check_chain`` refuses, before any data is generated or loaded, a chain that cannot run or
would mix up teachers: an output folder that cannot be written, a stage checkpoint in the way
without ``resume``, a resume with other settings, a student stage without a finished teacher,
and a ``teacher_path`` that differs from the teacher the output folder already holds (students
there were distilled from that one). It returns the models it loaded (``CheckedChain``);
``train_chain`` takes them, or makes the same checks itself, so no checkpoint is loaded twice.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import torch
import torch.nn as nn

from rbsf.checkpoint import (CheckpointError, load_checkpoint, model_from_checkpoint,
                             model_payload, unfinished_note)
from rbsf.data import DatasetError, Sequence, load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.files import check_writable_dir, save_atomic
from rbsf.models.siamfc import SiamFCNet
from rbsf.train import distributed as dist
from rbsf.train.config import STAGE_KIND, STAGES, TrainConfig
from rbsf.train.tracking import Trainer
from rbsf.train.trainer import TrainingError, check_resumable, refuse_existing


def resolve_sequences(config: TrainConfig, root: Optional[str], subset: str,
                      out_dir: Path) -> List[Sequence]:
    """Sequences of ``root``; with no root, a synthetic GOT-10k set generated once under
    ``out_dir/data`` from the shipped photos (written whole or not at all, reused by later runs
    and by --resume, refused when it is not the set this preset generates)."""
    if root is not None:
        return load_sequences(root, subset)
    data = Path(out_dir) / "data"
    if not data.exists():
        if dist.is_main():
            write_dataset(str(data), "got10k", config.synthetic_sequences,
                          config.synthetic_frames, config.seed, subsets=("train",),
                          workers=max(1, config.num_workers))
        dist.barrier()
    fix = f"delete {data} to generate it again, or pass another --out"
    try:
        sequences = load_sequences(str(data), "train")
    except DatasetError as exc:
        raise TrainingError(f"the generated data set {data} is incomplete or damaged ({exc}); "
                            f"{fix}") from exc
    frames = sorted({len(s.frames) for s in sequences})
    if len(sequences) != config.synthetic_sequences or frames != [config.synthetic_frames]:
        raise TrainingError(f"{data} holds {len(sequences)} sequences of "
                            f"{'/'.join(map(str, frames))} frames, not the "
                            f"{config.synthetic_sequences} of {config.synthetic_frames} frames "
                            f"the {config.preset} preset generates: it is incomplete or was "
                            f"made for other settings; {fix}")
    return sequences


def _finish_hint(path: Path) -> str:
    if path.name == "last.pt" and path.parent.name in STAGES:
        return (f"finish it with tools/train_rbsf.py --stage {path.parent.name} --out "
                f"{path.parent.parent} --resume (same preset and options)")
    return "finish its training with --resume"


def _load_finished(path: Path, kind: str, role: str,
                   build: Callable[[dict, str], nn.Module] = model_from_checkpoint,
                   finish_hint: Callable[[Path], str] = _finish_hint) -> nn.Module:
    path = Path(path)
    try:
        data = load_checkpoint(path)
        net = build(data, str(path))
    except CheckpointError as exc:
        raise TrainingError(str(exc)) from exc
    if net.kind != kind:
        needed = "full precision" if kind == "fp" else kind
        raise TrainingError(f"{path} holds a {net.kind} model; {role} must be {needed}")
    note = unfinished_note(data)
    if note:
        raise TrainingError(f"{role} {path} is an {note}; {finish_hint(path)}, or pass a "
                            f"finished one")
    return net.eval()


def load_teacher(path: Path, build: Callable[[dict, str], nn.Module] = model_from_checkpoint,
                 finish_hint: Callable[[Path], str] = _finish_hint) -> nn.Module:
    """A finished full-precision teacher that ``build`` makes from the checkpoint data (by
    default a SiamFC from our checkpoint or a siamfc-pytorch state dict); ``TrainingError``
    for anything else (an unfinished training says how far it got and ``finish_hint`` how to
    finish it)."""
    return _load_finished(path, "fp", "teacher", build, finish_hint)


def load_init(config: TrainConfig, stage: str) -> SiamFCNet:
    """The finished checkpoint ``config.init[stage]`` that ``stage`` starts from, of the
    stage's own kind; ``TrainingError`` when it is unfinished, of another kind, or made for
    another width or C mode."""
    path = Path(config.init[stage])
    net = _load_finished(path, STAGE_KIND[stage], f"--init {stage}=CKPT")
    _check_width(config, path, net)
    if net.kind == "rbconv" and net.c_mode != config.c_mode:
        raise TrainingError(f"{path} was trained with --c-mode {net.c_mode}, this run uses "
                            f"{config.c_mode}; pass --c-mode {net.c_mode}")
    return net


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold exactly the same state."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _check_width(config: TrainConfig, path: Path, net: SiamFCNet) -> None:
    if net.width != config.width:
        raise TrainingError(f"{path} has width {net.width}, the preset asks for "
                            f"{config.width}; pass --width {net.width}")


def _check_given_teacher(config: TrainConfig, out_dir: Path, teacher_path: Path) -> SiamFCNet:
    teacher = load_teacher(teacher_path)
    _check_width(config, teacher_path, teacher)
    held = out_dir / "teacher" / "last.pt"
    if held.exists():
        data = load_checkpoint(held)
        if not same_weights(model_from_checkpoint(data, str(held)), teacher):
            origin = (f"copied from {data['source']}" if data.get("source")
                      else unfinished_note(data) or "trained there")
            raise TrainingError(f"--out {out_dir} already holds a teacher ({held}, {origin}) "
                                f"that is not --teacher {teacher_path}; the students in "
                                f"{out_dir} learn from that one: choose another --out for "
                                f"students of {teacher_path}, or drop --teacher to use it")
    return teacher


@dataclass
class CheckedChain:
    """The checkpoints ``check_chain`` loaded: each ``--init`` model by stage, and the teacher
    the students learn from when it is not trained in the run (``--teacher``, or the finished
    one the output folder holds)."""

    init: Dict[str, SiamFCNet] = field(default_factory=dict)
    teacher: Optional[nn.Module] = None


def check_chain(config: TrainConfig, stages: Iterable[str], out_dir: Path,
                teacher_path: Optional[Path] = None, resume: bool = False) -> CheckedChain:
    """Refuse (``TrainingError``, ``ConfigError``, ``OutputPathError``) what would fail or mix
    up teachers, before any work (see the module docstring); returns the models loaded."""
    out_dir = Path(out_dir)
    stages = [s for s in STAGES if s in set(stages)]
    config.check(stages, dist.launch_size())
    check_writable_dir(out_dir, "--out")
    trained = [s for s in stages if not (s == "teacher" and teacher_path is not None)]
    for stage in config.init:
        if stage not in trained:
            raise TrainingError(f"--init {stage}={config.init[stage]} sets where stage {stage} "
                                f"starts, but no {stage} is trained here (--teacher, or --stage "
                                f"without {stage}); drop that --init")
    checked = CheckedChain({stage: load_init(config, stage) for stage in config.init})
    for stage in trained:
        path = out_dir / stage / "last.pt"
        if path.exists():
            refuse_existing(path, resume)
            check_resumable(load_checkpoint(path), path, config, stage)
    students = [s for s in stages if s != "teacher"]
    if teacher_path is not None:
        checked.teacher = _check_given_teacher(config, out_dir, Path(teacher_path))
    elif students and "teacher" not in stages:
        held = out_dir / "teacher" / "last.pt"
        if not held.exists():
            raise TrainingError(f"stage {students[0]} needs a teacher and {held} does not exist; "
                                f"train one first (--stage teacher) or pass --teacher CKPT")
        checked.teacher = load_teacher(held)
    return checked


def train_chain(config: TrainConfig, stages: Iterable[str], sequences: List[Sequence],
                out_dir: Path, device: str = "cpu", teacher_path: Optional[Path] = None,
                resume: bool = False, max_steps: Optional[int] = None,
                checked: Optional[CheckedChain] = None) -> dict:
    """Run the given stages in order; a stage named in ``config.init`` starts from that
    checkpoint; other students are initialised from the teacher of ``teacher_path`` or of
    ``out_dir/teacher/last.pt`` (which rbsf is distilled from in every case). ``checked``: what
    ``check_chain`` returned for these arguments (else it runs here). Returns the checkpoint
    path of each stage."""
    out_dir = Path(out_dir)
    stages = [s for s in STAGES if s in set(stages)]
    if checked is None:
        checked = check_chain(config, stages, out_dir, teacher_path, resume)
    results = {}
    if teacher_path is not None:
        teacher = checked.teacher
        target = out_dir / "teacher" / "last.pt"
        if dist.is_main() and not target.exists():
            save_atomic(model_payload(teacher, stage="teacher", finished=True,
                                      source=str(teacher_path)), target)
        dist.barrier()
        stages = [s for s in stages if s != "teacher"]
        results["teacher"] = target
    for stage in stages:
        teacher = None
        if stage != "teacher":
            teacher = (copy.deepcopy(checked.teacher) if checked.teacher is not None
                       else load_teacher(out_dir / "teacher" / "last.pt"))
        init = checked.init.get(stage)
        trainer = Trainer(config, stage, sequences, out_dir, device, teacher, max_steps,
                          init=init)
        results[stage] = trainer.run(resume=resume)
        if max_steps is not None:
            max_steps = max(0, max_steps - trainer.step)
    return results
