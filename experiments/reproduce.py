"""The whole small-scale reproduction in one call: data, six trainings, evaluation, tables.

Plan of one run (``reproduce``):

1. data (once, shared by every seed): a training set of synthetic GOT-10k-layout sequences
   rendered from the shipped photos, and a held-out test set of OTB-layout sequences rendered
   from photos that the training set never uses (``split_photos``);
2. per seed: train the teacher, then from it XNOR-SF and the RB-SF variants (``RUNS``): the
   paper's ablation steps RBConv only, + GAN, + BN update (= full RB-SF), and the full RB-SF
   with the non-saturating adversarial term; every student starts from the seed's teacher and
   gets the same budget;
3. per seed: track the held-out set with every model and score it with the evaluation library
   that ``tools/eval.py`` wraps (``<out>/seed<k>/report`` holds its report and plots), and
   score every model on a fixed set of held-out pairs (``rbsf.eval.pair_scores``: task loss and
   feature correlation with the teacher, far less noisy than tracking a few sequences);
4. ``<out>/summary.json``, ``<out>/results.md`` (Table 2 / Table 5 style; mean +- std over
   seeds) and success / precision plots of the seed-averaged curves.

Everything is resumable: finished trainings are reused (``train_chain`` resume) and finished
sequence results are skipped, so ``resume=True`` continues an interrupted run.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from rbsf.binary import binary_convs
from rbsf.checkpoint import load_checkpoint, load_model, model_payload
from rbsf.data import load_sequences
from rbsf.data.synthetic import DEFAULT_PHOTOS, list_photos, write_dataset
from rbsf.errors import RBSFError
from rbsf.eval.datasets import BENCHMARKS, select_sequences
from rbsf.eval.loading import load_benchmark
from rbsf.eval.pair_scores import held_out_pairs, pair_scores
from rbsf.eval.plots import precision_plot, success_plot
from rbsf.eval.report import build_summary, write_report
from rbsf.eval.runner import make_jobs, run_jobs
from rbsf.files import atomic_open, check_outputs, check_writable, check_writable_dir, save_atomic
from rbsf.train import TrainConfig, preset, train_chain
from rbsf.train.chain import load_teacher
from trackers.registry import TrackerFactory, entry, name_of_stage

DATASET_NAME = "held-out synthetic"
TABLE_LABEL = "synthetic sequences from real photos, small scale, not GOT-10k"
METRICS = (("success AUC", "success_auc"), ("precision@20", "precision_20"), ("SR0.5", "sr_50"))
# held-out pair scores (rbsf.eval.pair_scores): (label, key, higher is better)
PAIR_METRICS = (("pair loss ↓", "pair_loss", False),
                ("feature corr. with teacher", "teacher_similarity", True))
GAP_METRICS = tuple((label, key, True) for label, key in METRICS) + PAIR_METRICS
QUICK_PRESET = "smoke"
PLAN_FILE = "plan.json"


class ReproduceError(RBSFError, RuntimeError):
    """The reproduction cannot start or continue; the message says what to change."""


@dataclass(frozen=True)
class RunSpec:
    """One trained model: folder id, report name, training stage and config overrides."""

    id: str
    name: str
    stage: str
    flags: Dict[str, object] = field(default_factory=dict)
    row: str = ""


RUNS = (
    RunSpec("teacher", "SiamFC", "teacher", row="SiamFC teacher (full precision)"),
    RunSpec("xnor", "XNOR-SF", "xnor", row="XNOR-SF"),
    RunSpec("rbconv_only", "RBConv only", "rbsf",
            {"kernel_loss": True, "gan": False, "bn_update": False},
            row="RB-SF ablation: RBConv only (kernel loss)"),
    RunSpec("gan", "RBConv + GAN", "rbsf",
            {"kernel_loss": True, "gan": True, "bn_update": False},
            row="RB-SF ablation: + GAN"),
    RunSpec("rbsf", "RB-SF", "rbsf",
            {"kernel_loss": True, "gan": True, "bn_update": True},
            row="RB-SF: + BN update (full)"),
    RunSpec("rbsf_ns", "RB-SF non-saturating", "rbsf",
            {"kernel_loss": True, "gan": True, "bn_update": True, "gan_loss": "nonsaturating"},
            row="RB-SF, non-saturating GAN term (ours)"),
)
GAP_RUNS = tuple(run.id for run in RUNS if run.stage == "rbsf")
RUN_BY_ID = {run.id: run for run in RUNS}
SHIPPED_RUNS = ("teacher", "xnor", "rbsf")  # the runs --ship-weights copies, one per stage

# The paper's Table 5 (DESIGN.md section 2): (dataset, metric, SiamFC, XNOR, RB-SF).
PAPER_TABLE5 = (
    ("GOT-10k", "AO", 0.348, 0.251, 0.327), ("GOT-10k", "SR", 0.383, 0.230, 0.343),
    ("OTB50", "precision", 0.761, 0.457, 0.706), ("OTB50", "success", 0.556, 0.323, 0.496),
    ("OTB100", "precision", 0.808, 0.541, 0.786), ("OTB100", "success", 0.602, 0.394, 0.572),
    ("UAV123", "precision", 0.745, 0.547, 0.688), ("UAV123", "success", 0.528, 0.374, 0.497),
)


@dataclass(frozen=True)
class DataPlan:
    """Size of the generated training set and of the held-out test set."""

    train_sequences: int
    train_frames: int
    test_sequences: int
    test_frames: int
    frame_size: Tuple[int, int]
    test_pairs: int
    test_photos: int = 3
    seed: int = 0


FULL_DATA = DataPlan(train_sequences=24, train_frames=60, test_sequences=6, test_frames=80,
                     frame_size=(480, 360), test_pairs=256)
GPU_DATA = DataPlan(train_sequences=96, train_frames=80, test_sequences=12, test_frames=100,
                    frame_size=(480, 360), test_pairs=1024)
DATA_PLANS = {"gpu": GPU_DATA}   # other presets use FULL_DATA (QUICK_DATA with --quick)
QUICK_DATA = DataPlan(train_sequences=2, train_frames=16, test_sequences=1, test_frames=8,
                      frame_size=(240, 180), test_pairs=8)
QUICK_BATCHES = 2   # --quick: every stage trains one epoch of two mini-batches


def _write_json(path: Path, data: object) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2)


# ---------------------------------------------------------------------------------- data
def split_photos(photo_dir: Optional[str], test_count: int,
                 seed: int) -> Tuple[List[str], List[str]]:
    """(training photo names, held-out photo names): a seeded draw of ``test_count`` photos."""
    try:
        names = [p.name for p in list_photos(photo_dir)]
    except ValueError as exc:
        raise ReproduceError(f"{exc} (--photos)") from exc
    if len(names) < test_count + 2:
        raise ReproduceError(f"need at least {test_count + 2} photos in "
                             f"{photo_dir or DEFAULT_PHOTOS} ({test_count} held out for testing, "
                             f"2 for training); found {len(names)}")
    order = np.random.default_rng(seed).permutation(len(names))
    test = sorted(names[i] for i in order[:test_count])
    return [n for n in names if n not in test], test


def _write_once(root: Path, write: Callable[[Path], None]) -> Path:
    """Write a data set into ``root`` unless it is already there (``write_dataset`` writes a
    data set whole or not at all, so a folder that exists is complete)."""
    if not root.is_dir():
        write(root)
    return root


def make_data(data_dir: Path, plan: DataPlan, photo_dir: Optional[str] = None,
              workers: int = 1) -> Dict[str, object]:
    """Generate (or reuse) the training and held-out sets (``workers`` rendering processes);
    returns their roots and photos."""
    train_photos, test_photos = split_photos(photo_dir, plan.test_photos, plan.seed)

    def write_train(tmp: Path) -> None:
        write_dataset(str(tmp), "got10k", plan.train_sequences, plan.train_frames, plan.seed,
                      photo_dir, plan.frame_size, train_photos, progress=True,
                      subsets=("train",), workers=workers)

    def write_test(tmp: Path) -> None:
        write_dataset(str(tmp), "otb", plan.test_sequences, plan.test_frames, plan.seed + 1,
                      photo_dir, plan.frame_size, test_photos, progress=True, workers=workers)

    train_root = _write_once(Path(data_dir) / "train", write_train)
    test_root = _write_once(Path(data_dir) / "test", write_test)
    return {**asdict(plan), "train_root": str(train_root), "test_root": str(test_root),
            "train_photos": train_photos, "test_photos": test_photos}


# ---------------------------------------------------------------------------------- training
@dataclass
class TrainedRun:
    """A finished training: checkpoint and budget (pairs seen, steps, batch, wall seconds);
    ``given`` for a teacher handed in (``--teacher``), whose budget is not known here."""

    checkpoint: str
    pairs: int
    steps: int
    batch_size: int
    seconds: float
    given: bool = False


def run_config(base: TrainConfig, run: RunSpec, seed: int) -> TrainConfig:
    """The config of one run: the preset with the seed and the run's ablation flags."""
    config = TrainConfig.from_dict(base.to_dict())
    config.seed = seed
    for key, value in run.flags.items():
        setattr(config, key, value)
    return config


def train_run(config: TrainConfig, run: RunSpec, sequences, run_dir: Path, device: str,
              teacher: Optional[Path], resume: bool) -> TrainedRun:
    """Train one run (``train_chain`` of its stage, from ``teacher`` for students); its wall time
    accumulates in ``run_dir/timing.json`` over resumed sessions (interrupted ones included)."""
    timing = run_dir / "timing.json"
    spent = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
    started = time.perf_counter()
    try:
        paths = train_chain(config, [run.stage], sequences, run_dir, device, teacher, resume)
    finally:
        run_dir.mkdir(parents=True, exist_ok=True)
        spent += time.perf_counter() - started
        _write_json(timing, {"seconds": spent})
    data = load_checkpoint(paths[run.stage])
    return TrainedRun(str(paths[run.stage]), int(data["budget"]["pairs_seen"]), int(data["step"]),
                      config.batch_size, spent)


def train_seed(base: TrainConfig, seed: int, sequences, seed_dir: Path, device: str = "cpu",
               resume: bool = False, teacher: Optional[Path] = None) -> Dict[str, TrainedRun]:
    """Train every run of ``RUNS`` for one seed into ``seed_dir/train/<run id>/``; with
    ``teacher``, that checkpoint is the seed's teacher and only the students are trained."""
    results = {}
    teacher_ckpt = None
    for run in RUNS:
        run_dir = Path(seed_dir) / "train" / run.id
        if run.stage == "teacher" and teacher is not None:
            results[run.id] = TrainedRun(str(teacher), 0, 0, base.batch_size, 0.0, given=True)
            teacher_ckpt = Path(teacher)
            continue
        results[run.id] = train_run(run_config(base, run, seed), run, sequences, run_dir,
                                    device, teacher_ckpt, resume)
        if run.stage == "teacher":
            teacher_ckpt = Path(results[run.id].checkpoint)
    return results


# ---------------------------------------------------------------------------------- evaluation
def evaluate_seed(test_root: Path, trained: Dict[str, TrainedRun], seed_dir: Path,
                  workers: int = 1, device: str = "cpu") -> Dict[str, object]:
    """Track the held-out set with every model on ``device`` (finished sequences are skipped)
    and write the evaluation report of ``rbsf.eval`` into ``seed_dir/report``; returns its
    summary."""
    benchmark = BENCHMARKS["custom"]
    names, _ = select_sequences(benchmark, Path(test_root), None)
    sequences = load_benchmark(benchmark, Path(test_root), None, names)
    trackers = {RUN_BY_ID[run_id].name: TrackerFactory(name_of_stage(RUN_BY_ID[run_id].stage),
                                                       run.checkpoint, device,
                                                       RUN_BY_ID[run_id].name)
                for run_id, run in trained.items()}
    result_dir = Path(seed_dir) / "results"
    jobs = make_jobs(trackers, sequences, result_dir)
    with tqdm(total=len(jobs), desc=f"tracking {seed_dir.name}", unit="seq") as bar:
        run_jobs(jobs, workers, progress=lambda seq: bar.update(1), spawn=device != "cpu")
    summary = build_summary(DATASET_NAME, benchmark.protocol, sequences, result_dir,
                            list(trackers))
    write_report(summary, Path(seed_dir) / "report")
    return summary


def score_pairs_seed(test_root: Path, trained: Dict[str, TrainedRun], pairs: int,
                     config: TrainConfig, seed_dir: Path, device: str = "cpu"
                     ) -> Dict[str, Dict[str, object]]:
    """Every model's ``pair_scores`` on ``pairs`` held-out pairs (the same pairs for every model
    and seed), with the feature correlation measured against the seed's teacher; kept in
    ``seed_dir/pair_scores.json`` (reused when resuming)."""
    path = Path(seed_dir) / "pair_scores.json"
    if path.is_file():
        return json.loads(path.read_text())
    dataset = held_out_pairs(load_sequences(str(test_root)), pairs, config.exemplar_size,
                             config.instance_size, config.search_size)
    nets = {run_id: load_model(run.checkpoint) for run_id, run in trained.items()}
    scores = pair_scores(nets, dataset, device, teacher=nets["teacher"],
                         workers=min(8, os.cpu_count() or 1) if device != "cpu" else 0)
    _write_json(path, scores)
    return scores


# ---------------------------------------------------------------------------------- summary
def mean_std(values: Sequence[float]) -> Dict[str, object]:
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "values": [float(v) for v in array]}


def gap_closed(fp: float, xnor: float, rbsf: float, higher_is_better: bool = True
               ) -> Optional[float]:
    """Share of the XNOR -> full-precision gap that RB-SF closes: (rbsf - xnor) / (fp - xnor);
    None when there is no gap to close (XNOR scores at or better than full precision)."""
    gap = fp - xnor if higher_is_better else xnor - fp
    if gap <= 1e-12:
        return None
    return (rbsf - xnor) / (fp - xnor)


def aggregate(per_seed: List[Dict[str, object]]) -> Dict[str, object]:
    """Combine the seeds' scores and budgets. Each item: {"seed", "scores": {run id: {metric:
    value}}, "budgets": {run id: TrainedRun as dict}}; a run's scores hold the tracking metrics
    (``METRICS`` and fps) and the pair scores (``PAIR_METRICS``)."""
    models = {}
    keys = [key for _, key in METRICS] + ["fps"] + [key for _, key, _ in PAIR_METRICS]
    for run in RUNS:
        entry = {"name": run.name, "row": run.row, "stage": run.stage, "flags": run.flags}
        for key in keys:
            entry[key] = mean_std([s["scores"][run.id][key] for s in per_seed])
        budgets = [s["budgets"][run.id] for s in per_seed]
        entry["budget"] = {"pairs": mean_std([b["pairs"] for b in budgets]),
                           "steps": mean_std([b["steps"] for b in budgets]),
                           "batch_size": budgets[0]["batch_size"],
                           "given": budgets[0].get("given", False),
                           "minutes": mean_std([b["seconds"] / 60 for b in budgets])}
        entry["checkpoints"] = [b["checkpoint"] for b in budgets]
        models[run.id] = entry
    gaps = {run_id: {key: {"of_means": gap_closed(models["teacher"][key]["mean"],
                                                  models["xnor"][key]["mean"],
                                                  models[run_id][key]["mean"], higher),
                           "per_seed": [gap_closed(s["scores"]["teacher"][key],
                                                   s["scores"]["xnor"][key],
                                                   s["scores"][run_id][key], higher)
                                        for s in per_seed]}
                     for _, key, higher in GAP_METRICS}
            for run_id in GAP_RUNS}
    return {"seeds": [s["seed"] for s in per_seed], "models": models, "gap_closed": gaps}


def _cell(stat: Dict[str, object], digits: int = 3) -> str:
    if len(stat["values"]) > 1:
        return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}"


def _share(value: Optional[float], undefined: str = "undefined (XNOR at or better than FP)"
           ) -> str:
    return undefined if value is None else f"{100 * value:.0f} %"


def markdown_table(summary: Dict[str, object]) -> str:
    """Rows = models, columns = tracking scores, held-out pair scores and budget (mean ± std
    over seeds)."""
    header = (["model"] + [label for label, _ in METRICS] + [label for label, _, _ in PAIR_METRICS]
              + ["budget: pairs (steps × batch)", "train minutes"])
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for run in RUNS:
        m = summary["models"][run.id]
        b = m["budget"]
        if b.get("given"):
            pairs, minutes = "given (--teacher)", "–"
        else:
            pairs = f"{b['pairs']['mean']:.0f} ({b['steps']['mean']:.0f} × {b['batch_size']})"
            minutes = _cell(b["minutes"], 1)
        cells = ([m["row"]] + [_cell(m[key]) for _, key in METRICS]
                 + [_cell(m[key]) for _, key, _ in PAIR_METRICS] + [pairs, minutes])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gap_table(summary: Dict[str, object]) -> str:
    """Per RB-SF row, the share of the XNOR -> full-precision gap it closes in each metric
    (of the means over seeds; "–" where XNOR is at or better than full precision)."""
    header = ["model"] + [label for label, _, _ in GAP_METRICS]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for run_id in GAP_RUNS:
        gaps = summary["gap_closed"][run_id]
        cells = [RUN_BY_ID[run_id].row] + [_share(gaps[key]["of_means"], "–")
                                           for _, key, _ in GAP_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_table() -> str:
    """The paper's Table 5, for reference beside ours."""
    lines = ["| dataset | metric | SiamFC (FP) | XNOR | RB-SF |", "|---|---|---|---|---|"]
    lines += [f"| {d} | {m} | {fp:.3f} | {x:.3f} | {r:.3f} |" for d, m, fp, x, r in PAPER_TABLE5]
    return "\n".join(lines)


def _scale_note(pairs_scale: float) -> str:
    return "" if pairs_scale == 1.0 else f" with pairs per epoch × {pairs_scale:g}"


def _teacher_note(summary: Dict[str, object]) -> str:
    if not summary.get("teacher"):
        return ""
    return (f" Teacher: the given checkpoint `{summary['teacher']}` (--teacher) for every seed, "
            f"not trained in this run; the spread over seeds is the students' training alone.")


def markdown(summary: Dict[str, object]) -> str:
    """``results.md``: our table, the gap RB-SF closes, the data, and the paper's numbers."""
    data = summary["data"]
    seeds = summary["seeds"]
    gap = summary["gap_closed"]["rbsf"]
    spread = (f"mean ± sample std over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
              if len(seeds) > 1 else f"one seed ({seeds[0]})")
    text = [
        "# RB-SF reproduction (Table 2 / Table 5 style)", "",
        f"**{TABLE_LABEL}.** These numbers are not comparable with the paper's benchmarks.", "",
        f"Preset `{summary['preset']}`{' (--quick)' if summary['quick'] else ''}"
        f"{_scale_note(summary.get('pairs_scale', 1.0))}, trained and tracked on "
        f"`{summary.get('device', 'cpu')}`; {spread}. "
        f"Held-out set: {data['test_sequences']} sequences × {data['test_frames']} frames "
        f"({data['frame_size'][0]}×{data['frame_size'][1]}) rendered only from the photos "
        f"{', '.join(data['test_photos'])}, which no training sequence uses; training set: "
        f"{data['train_sequences']} sequences × {data['train_frames']} frames from the other "
        f"{len(data['train_photos'])} photos. Scores: OTB protocol of `rbsf.eval` (success = AUC "
        f"of the success plot, precision at 20 px, SR0.5 = success at IoU 0.5). Pair scores "
        f"(`rbsf.eval.pair_scores`) on {data['test_pairs']} fixed training-style pairs from the "
        f"held-out sequences: the balanced logistic loss of training (lower is better) and the "
        f"correlation of each binarized layer's feature vectors with the seed's teacher's, "
        f"averaged over conv2-conv5 (what the discriminators judge).", "",
        markdown_table(summary), "",
        "Budgets: pairs seen by each model's own training (steps × batch) and its wall time on "
        "this machine. Every student (XNOR and the RB-SF rows) starts from the same seed's "
        "teacher; the teacher's budget is not included in theirs. Where the teacher is "
        "under-trained (the cpu preset), extra student training can outweigh binarization, "
        "so budgets decide the comparison (DESIGN §4)." + _teacher_note(summary), "",
        f"Share of the XNOR → full-precision gap that RB-SF closes, "
        f"(RB-SF − XNOR) / (FP − XNOR): "
        f"success {_share(gap['success_auc']['of_means'])}, precision "
        f"{_share(gap['precision_20']['of_means'])} (of the means). The paper's Table 5 gives "
        f"{_share(gap_closed(0.602, 0.394, 0.572))} on OTB100 success and "
        f"{_share(gap_closed(0.348, 0.251, 0.327))} on GOT-10k AO. Every RB-SF row, every "
        f"metric (–: XNOR at or better than full precision, no gap to close):", "",
        gap_table(summary), "",
        "## The paper's Table 5 (for reference; real benchmarks, GPU-trained)", "",
        paper_table(), "",
        "Plots: `success_plot.png`, `precision_plot.png` (curves averaged over seeds); per-seed "
        "reports in `seed<k>/report/`.",
    ]
    return "\n".join(text) + "\n"


def mean_curves(seed_summaries: List[Dict[str, object]], curve: str) -> Dict[str, np.ndarray]:
    """Per model report name, the curve averaged over seeds."""
    return {run.name: np.mean([np.asarray(s["trackers"][run.name][curve])
                               for s in seed_summaries], axis=0) for run in RUNS}


def output_files(out: Path) -> List[Path]:
    """What ``write_outputs`` writes: summary.json, results.md and the two plots."""
    return [Path(out) / name for name in ("summary.json", "results.md", "success_plot.png",
                                          "precision_plot.png")]


def write_outputs(summary: Dict[str, object], seed_summaries: List[Dict[str, object]],
                  out: Path) -> List[Path]:
    """``summary.json``, ``results.md`` and the seed-averaged plots in ``out``."""
    paths = output_files(out)
    _write_json(paths[0], summary)
    with atomic_open(paths[1]) as handle:
        handle.write(markdown(summary))
    models = summary["models"]
    success_plot(mean_curves(seed_summaries, "success_curve"),
                 {RUN_BY_ID[k].name: m["success_auc"]["mean"] for k, m in models.items()},
                 DATASET_NAME, "AUC", paths[2])
    precision_plot(mean_curves(seed_summaries, "precision_curve"),
                   {RUN_BY_ID[k].name: m["precision_20"]["mean"] for k, m in models.items()},
                   DATASET_NAME, paths[3])
    return paths


# ---------------------------------------------------------------------------------- weights
def compact_payload(net, **extra) -> Dict[str, object]:
    """``model_payload`` with float16 storage where it changes nothing; loading casts back.

    Full precision: every floating tensor in float16 (responses agree to ~1e-3 of their range).
    Binary nets: only the binary convolutions' latent weights (over 90 % of the parameters; their
    sign, and for XNOR their mean magnitude, is all the network uses); the real-valued tensors
    (first conv, BN, scales) stay float32 because they feed sign(): rounded to float16 they flip
    activations near zero and change the tracker's responses. A negative weight too small for
    float16 keeps the smallest float16 of its sign instead of rounding to -0 (sign(0) = +1).
    """
    payload = model_payload(net, **extra)
    binary = {f"{name}.weight" for name, _ in binary_convs(net)}
    tiny = torch.tensor(2.0 ** -24, dtype=torch.float16)
    state = {}
    for key, value in payload["model"].items():
        if value.is_floating_point() and (net.kind == "fp" or key in binary):
            half = value.detach().to(torch.float16)
            value = torch.where((half == 0) & (value < 0), -tiny, half)
        state[key] = value
    payload["model"] = state
    return payload


def shipped_files(weights_dir: Path) -> List[Path]:
    """What ``ship_weights`` writes: one checkpoint per shipped run, then weights.json."""
    names = [entry(name_of_stage(RUN_BY_ID[run_id].stage)).weights_file for run_id in SHIPPED_RUNS]
    return [Path(weights_dir) / name for name in names + ["weights.json"]]


def check_shipping(weights_dir: Path, teacher: Optional[Path] = None) -> None:
    """Before any work: every file ``ship_weights`` writes can be written and none of them is
    the ``teacher`` the run reads."""
    check_writable_dir(weights_dir, "--weights-dir")
    for path in shipped_files(weights_dir):
        check_outputs({"--weights-dir file": path}, {"--teacher file": teacher})


def ship_weights(summary: Dict[str, object], weights_dir: Path) -> Dict[str, object]:
    """Copy seed 0's teacher / XNOR / full RB-SF into ``weights_dir`` as compact checkpoints
    and write the facts (data, budget, scores) to ``weights_dir/weights.json``."""
    weights_dir = Path(weights_dir)
    facts = {"source": "tools/reproduce.py", "preset": summary["preset"], "quick": summary["quick"],
             "pairs_scale": summary["pairs_scale"], "device": summary["device"],
             "seed": summary["seeds"][0], "evaluation": TABLE_LABEL, "data": summary["data"],
             "models": {}}
    *checkpoints, facts_file = shipped_files(weights_dir)
    for run_id, path in zip(SHIPPED_RUNS, checkpoints):
        model = summary["models"][run_id]
        source = model["checkpoints"][0]
        net = load_model(source)
        save_atomic(compact_payload(net, stage=RUN_BY_ID[run_id].stage, finished=True,
                                    source=source), path)
        facts["models"][path.name] = {
            "name": model["name"], "kind": net.kind, "model_config": net.config(),
            "source_checkpoint": source,
            "budget": ({"given": source} if model["budget"].get("given") else
                       {"pairs": model["budget"]["pairs"]["values"][0],
                        "steps": model["budget"]["steps"]["values"][0],
                        "batch_size": model["budget"]["batch_size"],
                        "minutes": round(model["budget"]["minutes"]["values"][0], 2)}),
            "scores": {key: model[key]["values"][0]
                       for key in [k for _, k in METRICS] + [k for _, k, _ in PAIR_METRICS]}}
    _write_json(facts_file, facts)
    return facts


# ---------------------------------------------------------------------------------- the run
def _check_plan(out: Path, plan: Dict[str, object], resume: bool) -> None:
    """Refuse to mix runs: a new run needs a fresh folder, a resumed one the same plan."""
    plan = json.loads(json.dumps(plan))   # tuples as lists, as read back from the file
    plan_file = out / PLAN_FILE
    if plan_file.is_file():
        if not resume:
            raise ReproduceError(f"{out} already holds a reproduction; pass --resume to continue "
                                 f"it or choose another --out")
        saved = json.loads(plan_file.read_text())
        if saved != plan:
            changed = sorted(k for k in set(saved) | set(plan) if saved.get(k) != plan.get(k))
            raise ReproduceError(f"{out} was started with other settings ({', '.join(changed)}); "
                                 f"resume with the same --preset/--quick or choose another --out")
    elif out.is_dir() and any(out.iterdir()):
        raise ReproduceError(f"{out} is not empty and holds no reproduction; choose another --out")
    _write_json(plan_file, plan)


def scale_budget(config: TrainConfig, pairs_scale: float) -> None:
    """Multiply every stage's pairs per epoch by ``pairs_scale`` (whole mini-batches, at least
    one), keeping the preset's epochs and schedules."""
    if not pairs_scale > 0:
        raise ReproduceError(f"--pairs-scale must be positive, got {pairs_scale}")
    for schedule in config.stages.values():
        batches = max(1, round(schedule.pairs_per_epoch * pairs_scale / config.batch_size))
        schedule.pairs_per_epoch = batches * config.batch_size


def reproduce(out: Path, seeds: int = 1, quick: bool = False, preset_name: Optional[str] = None,
              device: str = "cpu", resume: bool = False, workers: int = 1,
              photo_dir: Optional[str] = None, pairs_scale: float = 1.0,
              teacher: Optional[Path] = None) -> Dict[str, object]:
    """Run the whole reproduction into ``out`` and return its summary (see the module doc).
    ``workers`` processes track sequences (on ``device``); data generation uses every core.
    ``teacher``: a full-precision checkpoint used as every seed's teacher instead of training
    one (its width must match the preset's); the spread over seeds is then the students'."""
    if seeds < 1:
        raise ReproduceError(f"--seeds must be at least 1, got {seeds}")
    preset_name = preset_name or (QUICK_PRESET if quick else "cpu")
    try:
        base = preset(preset_name)
    except ValueError as exc:
        raise ReproduceError(str(exc)) from exc
    if quick:
        for schedule in base.stages.values():
            schedule.epochs, schedule.pairs_per_epoch = 1, QUICK_BATCHES * base.batch_size
    scale_budget(base, pairs_scale)
    data_plan = QUICK_DATA if quick else DATA_PLANS.get(preset_name, FULL_DATA)
    out = Path(out)
    check_writable_dir(out, "--out")
    for path in output_files(out):
        check_writable(path, "--out file")
    if teacher is not None:
        width = load_teacher(Path(teacher)).width
        if width != base.width:
            raise ReproduceError(f"--teacher {teacher} has width {width}; the {preset_name} "
                                 f"preset trains width {base.width}")
    _check_plan(out, {"preset": preset_name, "quick": quick, "pairs_scale": pairs_scale,
                      "data": asdict(data_plan), "photo_dir": photo_dir,
                      "teacher": None if teacher is None else str(Path(teacher).resolve())},
                resume)
    data = make_data(out / "data", data_plan, photo_dir, os.cpu_count() or 1)
    sequences = load_sequences(data["train_root"], "train")
    per_seed, seed_summaries = [], []
    for seed in range(seeds):
        seed_dir = out / f"seed{seed}"
        trained = train_seed(base, seed, sequences, seed_dir, device, resume=True,
                             teacher=teacher)
        report = evaluate_seed(Path(data["test_root"]), trained, seed_dir, workers, device)
        pairs = score_pairs_seed(Path(data["test_root"]), trained, data_plan.test_pairs, base,
                                 seed_dir, device)
        seed_summaries.append(report)
        per_seed.append({"seed": seed,
                         "scores": {run.id: {**report["trackers"][run.name], **pairs[run.id]}
                                    for run in RUNS},
                         "budgets": {k: asdict(v) for k, v in trained.items()}})
    summary = {"title": TABLE_LABEL, "preset": preset_name, "quick": quick,
               "pairs_scale": pairs_scale, "device": device,
               "teacher": None if teacher is None else str(teacher), "data": data,
               **aggregate(per_seed)}
    write_outputs(summary, seed_summaries, out)
    return summary
