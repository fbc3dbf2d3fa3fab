"""Score stored results and write ``summary.json``, ``summary.md`` and the plots of a dataset.

``summary.json`` holds, per tracker, the dataset scores, fps, the curves and per-sequence
values: GOT-10k AO, SR0.5, SR0.75; OTB / UAV123 / NfS / TColor128 / DTB70 / custom success AUC,
precision at 20 px, SR0.5; LaSOT success AUC, normalised precision (AUC), precision at 20 px;
VOT (supervised) accuracy, robustness and failures. ``summary.md`` puts the trackers side by
side in the paper's Table 5 layout (rows: dataset / metric, columns: trackers). Plots: success
and precision (LaSOT: and normalised precision) or, for VOT, accuracy against robustness. A
tracker whose weights are an unfinished training checkpoint is marked ``(unfinished)`` in the
table and the plots, and ``summary.json`` says how far its training got. GOT-10k test and
TrackingNet have no public ground truth: their report is a submission archive per tracker, in
the layout of the benchmark's evaluation server.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from rbsf.eval import metrics, vot
from rbsf.eval.plots import ar_plot, norm_precision_plot, precision_plot, success_plot
from rbsf.eval.runner import EvalError, result_paths, vot_record_files
from rbsf.files import atomic_open

SUMMARY_FILES = ("summary.json", "summary.md")
PLOT_FILES = {"otb": ("success_plot.png", "precision_plot.png"),
              "got10k": ("success_plot.png", "precision_plot.png"),
              "lasot": ("success_plot.png", "precision_plot.png", "norm_precision_plot.png"),
              "vot": ("ar_plot.png",)}
ROWS = {"otb": (("success", "success_auc"), ("precision", "precision_20"), ("SR0.5", "sr_50"),
                ("fps", "fps")),
        "got10k": (("AO", "ao"), ("SR0.5", "sr_50"), ("SR0.75", "sr_75"), ("fps", "fps")),
        "lasot": (("success", "success_auc"), ("norm. precision", "norm_precision"),
                  ("precision", "precision_20"), ("fps", "fps")),
        "vot": (("accuracy", "accuracy"), ("robustness", "robustness"),
                ("failures", "failures"), ("fps", "fps"))}
NOTES = {
    "otb": "success = AUC of the 21-threshold success plot; precision = share of frames with "
           "centre error <= 20 px; fps = mean per-sequence speed.",
    "got10k": "AO = mean IoU; SR = share of frames with IoU above 0.5 / 0.75 (frames 2..N, "
              "target visible); fps = mean per-frame speed.",
    "lasot": "success = AUC of the 21-threshold success plot; norm. precision = AUC of the "
             "precision plot over centre errors normalised by the target size, 0 to 0.5; "
             "precision = share of frames with centre error <= 20 px; frames with the target "
             "fully occluded or out of view count as failures (LaSOT's protocol); fps = mean "
             "per-sequence speed.",
    "vot": "Supervised experiment (re-initialised 5 frames after each failure), scored as the "
           "got10k toolkit's ExperimentVOT.report: accuracy = mean IoU outside the 10 frames "
           "after each initialisation, robustness = failures, both weighted over the attribute "
           "tags; failures = all failures (mean over repetitions); fps = mean per-frame speed. "
           "No EAO (the toolkit has none).",
}


def load_result(result_dir: Path, tracker: str, seq, layout: str):
    """(boxes, times or None) of ``tracker`` on ``seq`` under ``result_dir``; ``EvalError``
    saying what to do when the result is missing, corrupt or of another length."""
    box_file, time_file = result_paths(result_dir, tracker, seq.name, layout)
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


def trackers_in(result_dir: Path) -> List[str]:
    """Names of the trackers with a result folder under ``result_dir`` (a dataset's folder of
    ``tools/eval.py --result-dir``); ``EvalError`` when it does not exist."""
    if not Path(result_dir).is_dir():
        raise EvalError(f"result folder {result_dir} does not exist; give the folder "
                        f"tools/eval.py --result-dir wrote, with the dataset's name, e.g. "
                        f"results/custom")
    return sorted(p.name for p in Path(result_dir).iterdir() if p.is_dir())


def _image_size(seq) -> tuple:
    with Image.open(seq.frames[0]) as image:
        return image.size


def score_otb(result_dir: Path, tracker: str, sequences: Sequence) -> Dict[str, object]:
    """OTB / UAV123 protocol scores of one tracker over the given sequences."""
    per_seq, fps = {}, []
    for seq in sequences:
        boxes, times = load_result(result_dir, tracker, seq, "otb")
        scores = metrics.otb_sequence(boxes, seq.boxes)
        fps.append(metrics.sequence_fps(times))
        per_seq[seq.name] = {**scores, "fps": fps[-1]}
    return {**metrics.otb_overall(list(per_seq.values()), fps), "per_sequence": per_seq}


def score_got10k(result_dir: Path, tracker: str, sequences: Sequence) -> Dict[str, object]:
    """GOT-10k protocol scores (frames 2..N, visible, clipped to the image) of one tracker."""
    per_seq, all_ious, all_times, all_errors = {}, [], [], []
    for seq in sequences:
        boxes, times = load_result(result_dir, tracker, seq, "got10k")
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


def score_lasot(result_dir: Path, tracker: str, sequences: Sequence) -> Dict[str, object]:
    """LaSOT protocol scores (success, normalised precision, precision) of one tracker."""
    per_seq, fps = {}, []
    for seq in sequences:
        boxes, times = load_result(result_dir, tracker, seq, "otb")
        scores = metrics.lasot_sequence(boxes, seq.boxes, seq.visible)
        fps.append(metrics.sequence_fps(times))
        per_seq[seq.name] = {**scores, "fps": fps[-1]}
    return {**metrics.lasot_overall(list(per_seq.values()), fps), "per_sequence": per_seq}


def _load_vot_result(result_dir: Path, tracker: str, seq):
    """Records of every repetition and the times (repetitions x frames) of one sequence."""
    records_files = vot_record_files(result_dir, tracker, seq.name)
    time_file = result_paths(result_dir, tracker, seq.name, "vot")[1]
    if not records_files or not time_file.is_file():
        raise EvalError(f"no finished result of {tracker} for sequence {seq.name} "
                        f"({time_file.parent}); run the tracker first (tools/eval.py runs and "
                        f"reports in one go)")
    try:
        records = [vot.parse_records(f.read_text()) for f in records_files]
        times = np.loadtxt(time_file, delimiter=",", ndmin=2).T
    except ValueError as exc:
        raise EvalError(f"result of {tracker} for {seq.name} is corrupt ({exc}); delete "
                        f"{time_file.parent} and rerun") from exc
    if any(len(r) != len(seq.frames) for r in records) or times.shape[1] != len(seq.frames):
        raise EvalError(f"results in {time_file.parent} do not have one line per frame of "
                        f"{seq.name} ({len(seq.frames)}); delete the folder and rerun")
    return records, times


def score_vot(result_dir: Path, tracker: str, sequences: Sequence) -> Dict[str, object]:
    """VOT supervised-experiment scores (accuracy, robustness, failures) of one tracker."""
    per_seq, frame_ious, frame_failures, masks, all_times = {}, [], [], [], []
    for seq in sequences:
        records, times = _load_vot_result(result_dir, tracker, seq)
        ious, fails = vot.sequence_frames(records, seq.regions, _image_size(seq))
        frame_ious.append(ious)
        frame_failures.append(fails)
        masks.append(vot.tag_masks(seq.tags, len(seq.frames)))
        all_times.append(times)
        per_seq[seq.name] = {**vot.sequence_scores(ious, fails), "repetitions": len(records),
                             "fps": metrics.sequence_fps(times)}
    return {**vot.overall(frame_ious, frame_failures, masks, all_times), "per_sequence": per_seq}


SCORERS = {"otb": score_otb, "got10k": score_got10k, "lasot": score_lasot, "vot": score_vot}


def build_summary(dataset: str, protocol: str, sequences: Sequence, result_dir: Path,
                  trackers: Sequence[str], missing: Sequence[str] = (),
                  subset: Optional[str] = None,
                  unfinished: Optional[Mapping[str, str]] = None,
                  not_found: int = 0,
                  settings: Optional[Mapping[str, Mapping[str, float]]] = None,
                  root: Optional[Path] = None) -> Dict[str, object]:
    """Scores of every tracker, plus what was evaluated (and what was missing: the names, and
    how many of the benchmark's sequences had no folder at all); ``unfinished`` maps a tracker
    run from an unfinished training checkpoint to how far that training got; ``settings`` maps
    each of our trackers to its settings that differed from SiamFC's reference values (a
    tracker left out, or None: not known);
    ``root`` names a custom set in the titles."""
    if protocol not in SCORERS:
        raise ValueError(f"no report for protocol {protocol!r} (its scores are the server's)")
    score = SCORERS[protocol]
    return {"dataset": dataset, "protocol": protocol, "subset": subset,
            "root": None if root is None else str(root),
            "sequences": [s.name for s in sequences], "partial": bool(missing) or not_found > 0,
            "missing": list(missing), "not_found": not_found,
            "unfinished": dict(unfinished or {}),
            "settings": {name: dict(changed) for name, changed in (settings or {}).items()},
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
    rows = ROWS[summary["protocol"]]
    lines = ["| dataset | metric | " + " | ".join(tracker_label(summary, n) for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for label, key in rows:
        cells = [f"{summary['trackers'][n][key]:.1f}" if key in ("fps", "failures")
                 else f"{summary['trackers'][n][key]:.3f}" for n in names]
        lines.append(f"| {summary['dataset']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def title(summary: Dict[str, object]) -> str:
    """The data set as titles name it: a custom set by its root folder (``custom: heldout``)."""
    root = summary.get("root")
    if summary["dataset"] == "custom" and root:
        return f"custom: {Path(root).name}"
    return summary["dataset"]


def markdown(summary: Dict[str, object]) -> str:
    """``summary.md``: the table, how many sequences it covers and what was left out."""
    count = len(summary["sequences"])
    text = [f"# {title(summary)} results", "", markdown_table(summary), "",
            f"Sequences evaluated: {count}."]
    if summary["partial"]:
        missing, unfound = summary["missing"], summary.get("not_found", 0)
        line = (f"**Partial evaluation** (--allow-partial): "
                f"{len(missing) + unfound} sequence(s) of the benchmark were missing and are not "
                f"in these numbers")
        if missing:
            line += f": {', '.join(missing[:30])}{' ...' if len(missing) > 30 else ''}"
        if unfound:
            line += f" ({unfound} without a folder under the root)"
        text.append(line)
    for name, note in summary.get("unfinished", {}).items():
        text.append(f"**{name} is not a finished model** ({note}).")
    text.extend(settings_lines(summary.get("settings") or {}))
    text.append(NOTES[summary["protocol"]])
    return "\n".join(text) + "\n"


def settings_lines(settings: Mapping[str, Mapping[str, float]]) -> List[str]:
    """What our trackers' settings were, one line for all of them when they share them, else
    one line per group of trackers with the same settings."""
    groups: Dict[str, List[str]] = {}
    for name, changed in settings.items():
        values = ", ".join(f"{k}={v:g}" for k, v in changed.items())
        text = (f"{values} (the rest SiamFC's reference values)" if values
                else "SiamFC's reference values")
        groups.setdefault(text, []).append(name)
    if len(groups) == 1:
        return [f"Our trackers' settings: {next(iter(groups))}."]
    return [f"Settings of {', '.join(names)}: {text}." for text, names in groups.items()]


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def report_files(out_dir: Path, trackers: Sequence[str], submission: bool = False,
                 protocol: str = "otb") -> List[Path]:
    """The files ``write_report`` writes into ``out_dir`` for ``protocol``, or with
    ``submission`` those of the submission archives (one zip per tracker)."""
    names = ([f"{name}.zip" for name in trackers] if submission
             else SUMMARY_FILES + PLOT_FILES[protocol])
    return [Path(out_dir) / name for name in names]


def _plots(summary: Dict[str, object], paths: Sequence[Path]) -> None:
    trackers = {tracker_label(summary, n): t for n, t in summary["trackers"].items()}
    dataset, protocol = title(summary), summary["protocol"]

    def curves(key):
        return {n: np.array(t[key]) for n, t in trackers.items()}

    def scores(key):
        return {n: t[key] for n, t in trackers.items()}
    if protocol == "vot":
        ar_plot(scores("accuracy"), scores("robustness"), dataset, paths[0])
        return
    got10k = protocol == "got10k"
    success_plot(curves("success_curve"), scores("ao" if got10k else "success_auc"), dataset,
                 "AO" if got10k else "AUC", paths[0])
    precision_plot(curves("precision_curve"), scores("precision_20"), dataset, paths[1])
    if protocol == "lasot":
        norm_precision_plot(curves("norm_precision_curve"), scores("norm_precision"), dataset,
                            paths[2])


def write_report(summary: Dict[str, object], out_dir: Path) -> List[Path]:
    """Write summary.json, summary.md and the protocol's plots into ``out_dir``."""
    paths = report_files(out_dir, list(summary["trackers"]), protocol=summary["protocol"])
    _write_text_atomic(paths[0], json.dumps(summary, indent=2))
    _write_text_atomic(paths[1], markdown(summary))
    _plots(summary, paths[2:])
    return paths


def submission_archives(result_dir: Path, trackers: Sequence[str], seq_names: Sequence[str],
                        out_dir: Path, protocol: str = "got10k") -> List[Path]:
    """One zip per tracker in the layout its evaluation server reads: GOT-10k test
    ``<seq>/<seq>_001.txt`` and ``<seq>/<seq>_time.txt`` (the toolkit's archive); TrackingNet
    ``<seq>.txt`` (x,y,w,h of every frame) at the top of the archive."""
    archives = []
    for name, path in zip(trackers, report_files(out_dir, trackers, submission=True)):
        with atomic_open(path, "wb") as handle, \
                zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for seq in seq_names:
                if protocol == "trackingnet":
                    members = [(result_paths(result_dir, name, seq, "otb")[0], f"{seq}.txt")]
                else:
                    members = [(f, f"{seq}/{f.name}")
                               for f in result_paths(result_dir, name, seq, "got10k")]
                for file, member in members:
                    if not file.is_file():
                        raise EvalError(f"no result {file} for the submission of {name}; rerun")
                    archive.write(file, member)
        archives.append(path)
    return archives
