"""Score stored results and write ``summary.json``, ``summary.md`` and the plots of a dataset.

``summary.json`` holds, per tracker, the dataset scores (GOT-10k: AO, SR0.5, SR0.75; OTB /
UAV123 / custom: success AUC, precision at 20 px, SR0.5), fps, the curves and per-sequence
values. ``summary.md`` puts the trackers side by side in the paper's Table 5 layout (rows:
dataset / metric, columns: trackers). A tracker whose weights are an unfinished training
checkpoint is marked ``(unfinished)`` in the table and the plots, and ``summary.json`` says how
far its training got. GOT-10k test has no public ground truth: its report is the toolkit's
submission archive per tracker.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from rbsf.eval import metrics
from rbsf.eval.plots import precision_plot, success_plot
from rbsf.eval.runner import EvalError, result_paths
from rbsf.files import atomic_open

REPORT_FILES = ("summary.json", "summary.md", "success_plot.png", "precision_plot.png")
OTB_ROWS = (("success", "success_auc"), ("precision", "precision_20"), ("SR0.5", "sr_50"),
            ("fps", "fps"))
GOT_ROWS = (("AO", "ao"), ("SR0.5", "sr_50"), ("SR0.75", "sr_75"), ("fps", "fps"))


def _load_result(result_dir: Path, tracker: str, seq, got10k: bool):
    box_file, time_file = result_paths(result_dir, tracker, seq.name, got10k)
    if not box_file.is_file():
        raise EvalError(f"no result of {tracker} for sequence {seq.name} ({box_file}); "
                        f"run the tracker first (tools/eval.py runs and reports in one go)")
    try:
        boxes = np.loadtxt(box_file, delimiter=",", ndmin=2)
        times = np.loadtxt(time_file, delimiter=",", ndmin=1) if time_file.is_file() else None
    except ValueError as exc:
        raise EvalError(f"result file of {tracker} for {seq.name} is corrupt ({exc}); "
                        f"delete {box_file} and rerun") from exc
    if boxes.shape != np.asarray(seq.boxes).shape:
        raise EvalError(f"{box_file} has {len(boxes)} boxes for {len(seq.boxes)} frames; "
                        f"delete it and rerun")
    return boxes, times


def _image_size(seq) -> tuple:
    with Image.open(seq.frames[0]) as image:
        return image.size


def score_otb(result_dir: Path, tracker: str, sequences: Sequence) -> Dict[str, object]:
    """OTB / UAV123 protocol scores of one tracker over the given sequences."""
    per_seq, fps = {}, []
    for seq in sequences:
        boxes, times = _load_result(result_dir, tracker, seq, got10k=False)
        scores = metrics.otb_sequence(boxes, seq.boxes)
        fps.append(metrics.sequence_fps(times))
        per_seq[seq.name] = {**scores, "fps": fps[-1]}
    return {**metrics.otb_overall(list(per_seq.values()), fps), "per_sequence": per_seq}


def score_got10k(result_dir: Path, tracker: str, sequences: Sequence) -> Dict[str, object]:
    """GOT-10k protocol scores (frames 2..N, visible, clipped to the image) of one tracker."""
    per_seq, all_ious, all_times, all_errors = {}, [], [], []
    for seq in sequences:
        boxes, times = _load_result(result_dir, tracker, seq, got10k=True)
        visible = np.asarray(seq.visible, dtype=bool)
        ious = metrics.got10k_sequence_ious(boxes, seq.boxes, visible, _image_size(seq))
        errors = metrics.center_error(boxes[1:], np.asarray(seq.boxes)[1:])[visible[1:]]
        all_ious.append(ious)
        all_errors.append(errors)
        all_times.append(times)
        seq_scores = metrics.got10k_scores(ious)
        per_seq[seq.name] = {key: seq_scores[key] for key in ("ao", "sr_50", "sr_75")}
        per_seq[seq.name]["fps"] = metrics.sequence_fps(times)
    overall = metrics.got10k_overall(all_ious, all_times)
    prec = metrics.precision_curve(np.concatenate(all_errors))
    return {**overall, "precision_curve": prec, "precision_20": float(prec[metrics.PRECISION_PX]),
            "per_sequence": per_seq}


def build_summary(dataset: str, protocol: str, sequences: Sequence, result_dir: Path,
                  trackers: Sequence[str], missing: Sequence[str] = (),
                  subset: Optional[str] = None,
                  unfinished: Optional[Mapping[str, str]] = None) -> Dict[str, object]:
    """Scores of every tracker, plus what was evaluated (and what was missing);
    ``unfinished`` maps a tracker run from an unfinished training checkpoint to how far that
    training got."""
    score = score_got10k if protocol == "got10k" else score_otb
    return {"dataset": dataset, "protocol": protocol, "subset": subset,
            "sequences": [s.name for s in sequences], "partial": bool(missing),
            "missing": list(missing), "unfinished": dict(unfinished or {}),
            "trackers": {name: _jsonable(score(result_dir, name, sequences)) for name in trackers}}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def tracker_label(summary: Dict[str, object], name: str) -> str:
    """A tracker's column or legend label: its name, marked when its training is unfinished."""
    return f"{name} (unfinished)" if name in summary.get("unfinished", {}) else name


def markdown_table(summary: Dict[str, object]) -> str:
    """The trackers side by side: rows dataset / metric, columns trackers (paper's Table 5)."""
    names = list(summary["trackers"])
    rows = GOT_ROWS if summary["protocol"] == "got10k" else OTB_ROWS
    lines = ["| dataset | metric | " + " | ".join(tracker_label(summary, n) for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for label, key in rows:
        cells = [f"{summary['trackers'][n][key]:.3f}" if key != "fps"
                 else f"{summary['trackers'][n][key]:.1f}" for n in names]
        lines.append(f"| {summary['dataset']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(summary: Dict[str, object]) -> str:
    """``summary.md``: the table, how many sequences it covers and what was left out."""
    count = len(summary["sequences"])
    text = [f"# {summary['dataset']} results", "", markdown_table(summary), "",
            f"Sequences evaluated: {count}."]
    if summary["partial"]:
        missing = summary["missing"]
        text.append(f"**Partial evaluation** (--allow-partial): {len(missing)} sequence(s) of the "
                    f"benchmark were missing and are not in these numbers: "
                    f"{', '.join(missing[:30])}{' ...' if len(missing) > 30 else ''}")
    for name, note in summary.get("unfinished", {}).items():
        text.append(f"**{name} is not a finished model** ({note}).")
    if summary["protocol"] == "otb":
        text.append("success = AUC of the 21-threshold success plot; precision = share of frames "
                    "with centre error <= 20 px; fps = mean per-sequence speed.")
    else:
        text.append("AO = mean IoU; SR = share of frames with IoU above 0.5 / 0.75 (frames 2..N, "
                    "target visible); fps = mean per-frame speed.")
    return "\n".join(text) + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def report_files(out_dir: Path, trackers: Sequence[str], submission: bool = False) -> List[Path]:
    """The files ``write_report`` writes into ``out_dir``, or with ``submission`` those of
    ``submission_archives`` (one zip per tracker)."""
    names = [f"{name}.zip" for name in trackers] if submission else REPORT_FILES
    return [Path(out_dir) / name for name in names]


def write_report(summary: Dict[str, object], out_dir: Path) -> List[Path]:
    """Write summary.json, summary.md, success_plot.png, precision_plot.png into ``out_dir``."""
    trackers = {tracker_label(summary, n): t for n, t in summary["trackers"].items()}
    got10k = summary["protocol"] == "got10k"
    score_key = "ao" if got10k else "success_auc"
    paths = report_files(out_dir, list(trackers))
    _write_text_atomic(paths[0], json.dumps(summary, indent=2))
    _write_text_atomic(paths[1], markdown(summary))
    success_plot({n: np.array(t["success_curve"]) for n, t in trackers.items()},
                 {n: t[score_key] for n, t in trackers.items()}, summary["dataset"],
                 "AO" if got10k else "AUC", paths[2])
    precision_plot({n: np.array(t["precision_curve"]) for n, t in trackers.items()},
                   {n: t["precision_20"] for n, t in trackers.items()}, summary["dataset"],
                   paths[3])
    return paths


def submission_archives(result_dir: Path, trackers: Sequence[str], seq_names: Sequence[str],
                        out_dir: Path) -> List[Path]:
    """GOT-10k test: one zip per tracker holding ``<seq>/<seq>_001.txt`` and ``<seq>_time.txt``
    of the given sequences (the layout of the toolkit's archive and the evaluation server)."""
    archives = []
    for name, path in zip(trackers, report_files(out_dir, trackers, submission=True)):
        with atomic_open(path, "wb") as handle, \
                zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for seq in seq_names:
                for file in result_paths(result_dir, name, seq, got10k=True):
                    if not file.is_file():
                        raise EvalError(f"no result {file} for the submission of {name}; rerun")
                    archive.write(file, f"{seq}/{file.name}")
        archives.append(path)
    return archives
