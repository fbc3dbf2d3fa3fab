"""Ship a finished training chain (``tools/train_rbsf.py --out RUN``) as the default weights.

    python -m experiments.ship_trained --run RUN --report heldout-real=DIR/summary.json \\
        --report heldout-rendered=DIR2/summary.json --weights-dir data/weights

Writes ``siamfc.pt``, ``xnor.pt`` and ``rbsf.pt`` (compact checkpoints,
``experiments.reproduce.compact_payload``) from ``RUN/<stage>/last.pt`` and ``weights.json``:
for each model its source checkpoint, what it was fine-tuned from, its training data and budget
(from the checkpoint's own train_config and log.csv) and its scores in each held-out report
(``tools/eval.py`` summaries). Export ``rbsf.packed`` afterwards with ``tools/export.py``.

``--stages xnor,rbsf`` ships only those stages (students fine-tuned again from the shipped
teacher, say): their files and their entries of ``weights.json`` are replaced, the others stay.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from experiments import run_job
from experiments.reproduce import compact_payload
from rbsf.checkpoint import load_checkpoint, model_from_checkpoint
from rbsf.errors import RBSFError
from rbsf.files import atomic_open, check_outputs, check_writable_dir, save_atomic
from rbsf.train.config import STAGES
from rbsf.train.logs import training_seconds
from tools.cli import choose
from trackers.registry import entry, name_of_stage

SCORES = ("success_auc", "precision_20", "sr_50")


class ShipError(RBSFError):
    """A run that is not finished, or a report that is missing or has no score of a model."""


def _stage_init(train_config: dict, stage: str) -> Optional[str]:
    # checkpoints written before TrainConfig.init (one release) name the teacher's as
    # teacher_init
    init = train_config.get("init", {}).get(stage)
    if init is None and stage == "teacher":
        init = train_config.get("teacher_init") or None
    return init


def _budget(data: dict, log: Path) -> Dict[str, object]:
    config = data["train_config"]
    schedule = config["stages"][data["stage"]]
    seconds = training_seconds(log)
    return {"pairs": data["budget"]["pairs_seen"], "steps": data["step"],
            "batch_size": config["batch_size"], "epochs": schedule["epochs"],
            "lr": [schedule["lr"], schedule["lr_end"]], "seed": config["seed"],
            "minutes": None if seconds is None else round(seconds / 60, 1)}


def read_reports(reports: Dict[str, Path]) -> Dict[str, dict]:
    """{report label: its summary's trackers}; ``ShipError`` for a missing or partial one."""
    read = {}
    for label, path in reports.items():
        try:
            summary = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ShipError(f"--report {label}={path} cannot be read ({exc}); run tools/eval.py "
                            f"first") from exc
        if summary.get("partial"):
            raise ShipError(f"--report {label}={path} is partial; evaluate every sequence")
        read[label] = summary["trackers"]
    return read


def _shipped_facts(facts_file: Path) -> Dict[str, dict]:
    """The models' entries of an existing weights.json (none when there is no file)."""
    if not facts_file.exists():
        return {}
    try:
        return dict(json.loads(facts_file.read_text())["models"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ShipError(f"{facts_file} cannot be read ({exc}); ship every stage to rewrite "
                        f"it") from exc


def ship(run: Path, reports: Dict[str, Path], weights_dir: Path,
         stages: Sequence[str] = STAGES) -> Dict[str, object]:
    """Write the compact checkpoints of ``stages`` and weights.json (the other stages' entries
    kept); returns the facts written."""
    run, weights_dir = Path(run), Path(weights_dir)
    sources = {stage: run / stage / "last.pt" for stage in stages}
    targets = {stage: weights_dir / entry(name_of_stage(stage)).weights_file for stage in stages}
    facts_file = weights_dir / "weights.json"
    check_writable_dir(weights_dir, "--weights-dir")
    replaced = {target.name for target in targets.values()}
    kept = ({} if set(stages) == set(STAGES) else
            {name: f for name, f in _shipped_facts(facts_file).items() if name not in replaced})
    check_outputs({**{f"{s} weights": p for s, p in targets.items()}, "facts": facts_file},
                  {f"{s} checkpoint": p for s, p in sources.items()})
    checkpoints = {}
    for stage, path in sources.items():
        if not path.is_file():
            raise ShipError(f"{path} does not exist; train stage {stage} into {run} first")
        data = load_checkpoint(path)
        if not data.get("finished"):
            raise ShipError(f"{path} is unfinished; finish it with tools/train_rbsf.py --stage "
                            f"{stage} --out {run} --resume")
        checkpoints[stage] = (data, model_from_checkpoint(data, str(path)))
    scores = read_reports(reports)
    facts: Dict[str, object] = {"source": "tools/train_rbsf.py", "models": kept}
    for stage, (data, net) in checkpoints.items():
        name = entry(name_of_stage(stage)).report_name
        missing = [label for label, trackers in scores.items() if name not in trackers]
        if missing:
            raise ShipError(f"report {missing[0]} has no {name}; evaluate it there first")
        config = data["train_config"]
        facts["models"][targets[stage].name] = {
            "name": name, "kind": net.kind, "model_config": net.config(),
            "source_checkpoint": str(sources[stage]), "init": _stage_init(config, stage),
            "data": data.get("data"), "budget": _budget(data, sources[stage].parent / "log.csv"),
            "scores": {label: {k: trackers[name][k] for k in SCORES}
                       for label, trackers in scores.items()}}
    for stage, (_, net) in checkpoints.items():
        save_atomic(compact_payload(net, stage=stage, finished=True, source=str(sources[stage])),
                    targets[stage])
    with atomic_open(facts_file) as handle:
        json.dump(facts, handle, indent=2)
        handle.write("\n")
    return facts


def _report(text: str):
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=SUMMARY.json, got {text!r}")
    return label, Path(path)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="training output folder (--out)")
    p.add_argument("--report", type=_report, action="append", default=[],
                   metavar="LABEL=SUMMARY", help="a held-out tools/eval.py summary.json; repeat")
    p.add_argument("--weights-dir", type=Path, default=Path("data/weights"),
                   help="where the shipped files go (default: data/weights)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated stages to ship, the others' files and facts kept "
                        f"(default: {','.join(STAGES)})")
    args = p.parse_args(argv)

    def job() -> str:
        stages = tuple(choose(args.stages, STAGES, "--stages"))
        ship(args.run, dict(args.report), args.weights_dir, stages)
        files = ", ".join(entry(name_of_stage(s)).weights_file for s in stages)
        return f"shipped {files} and weights.json to {args.weights_dir}"
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
