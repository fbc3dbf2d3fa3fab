"""The stage chain teacher -> xnor -> rbsf, the data it trains on, and teacher loading."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional

from rbsf.checkpoint import CheckpointError, load_model, model_payload
from rbsf.data import Sequence, load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from rbsf.train import distributed as dist
from rbsf.train.config import STAGES, TrainConfig
from rbsf.train.trainer import Trainer, TrainingError


def resolve_sequences(config: TrainConfig, root: Optional[str], subset: str,
                      out_dir: Path) -> List[Sequence]:
    """Sequences of ``root``; with no root, a synthetic GOT-10k set generated once under
    ``out_dir/data`` from the shipped photos (reused by later runs and by --resume)."""
    if root is None:
        root = str(Path(out_dir) / "data")
        if not (Path(root) / "train" / "list.txt").exists():
            if dist.is_main():
                write_dataset(root, "got10k", config.synthetic_sequences,
                              config.synthetic_frames, config.seed, subsets=("train",),
                              workers=max(1, config.num_workers))
            dist.barrier()
        subset = "train"
    return load_sequences(root, subset)


def load_teacher(path: Path) -> SiamFCNet:
    """A full-precision teacher from our checkpoint or a siamfc-pytorch state dict."""
    try:
        net = load_model(path)
    except CheckpointError as exc:
        raise TrainingError(str(exc)) from exc
    if net.kind != "fp":
        raise TrainingError(f"{path} holds a {net.kind} model; the teacher must be full precision")
    return net


def train_chain(config: TrainConfig, stages: Iterable[str], sequences: List[Sequence],
                out_dir: Path, device: str = "cpu", teacher_path: Optional[Path] = None,
                resume: bool = False, max_steps: Optional[int] = None) -> dict:
    """Run the given stages in order; students are initialised from (and, for rbsf, distilled
    from) the teacher of ``teacher_path`` or of ``out_dir/teacher/last.pt``. Returns the
    checkpoint path of each stage."""
    out_dir = Path(out_dir)
    stages = [s for s in STAGES if s in set(stages)]
    results = {}
    if teacher_path is not None:
        teacher = load_teacher(Path(teacher_path))
        if teacher.width != config.width:
            raise TrainingError(f"teacher {teacher_path} has width {teacher.width}, the preset "
                                f"asks for {config.width}; pass --width {teacher.width}")
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
            teacher = load_teacher(out_dir / "teacher" / "last.pt")
        trainer = Trainer(config, stage, sequences, out_dir, device, teacher, max_steps)
        results[stage] = trainer.run(resume=resume)
        if max_steps is not None:
            max_steps = max(0, max_steps - trainer.step)
    return results
