"""Whom a tracker follows when a look-alike passes its target (rendered crossings).

A crossing set (``tools/prepare_data.py tuning --crossing``) holds beside each sequence's ground
truth the boxes of a look-alike that passes the target (``rbsf.data.synthetic.CROSSER_FILE``,
NaN where it is out of view). The crossing is the span from the first to the last frame where
the two boxes overlap. A tracker's box is *on* the target (or the look-alike) in a frame when it
overlaps it by at least ``ON_IOU`` and by more than it overlaps the other. The outcome of one
sequence:

* ``lost before``: the box is not on the target in the last frame before the crossing;
* else, over the first ``window`` frames after the crossing in which the look-alike is in view:
  ``kept`` when the box is on the target in more than half of them, ``switched`` when it is on
  the look-alike in more than half, ``lost`` otherwise;
* ``no crossing``: the boxes never overlap, overlap from the first frame, or the look-alike is
  never in view after the crossing. Such a sequence says nothing and is not counted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from rbsf.data.sequences import read_boxes
from rbsf.data.synthetic import CROSSER_FILE
from rbsf.errors import RBSFError
from rbsf.eval.metrics import iou
from rbsf.eval.plots import outcome_plot
from rbsf.eval.report import load_result
from rbsf.files import write_record

ON_IOU = 0.1
WINDOW = 20
OUTCOMES = ("kept", "switched", "lost", "lost before", "no crossing")
REPORT_FILES = ("crossings.json", "crossings.md", "crossings.png")


class CrossingError(RBSFError, ValueError):
    """A crossing set or result folder that cannot be scored; says what to do."""


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows, 0 where either box is not finite."""
    finite = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
    out = np.zeros(len(a))
    if finite.any():
        out[finite] = iou(a[finite], b[finite])
    return out


def crossing_outcome(truth: np.ndarray, crosser: np.ndarray, boxes: np.ndarray,
                     window: int = WINDOW) -> str:
    """The outcome (one of ``OUTCOMES``) of a tracker's ``boxes`` on one sequence with target
    boxes ``truth`` and look-alike boxes ``crosser`` (all N x 4, x, y, w, h)."""
    truth, crosser, boxes = (np.asarray(a, np.float64).reshape(-1, 4)
                             for a in (truth, crosser, boxes))
    if not len(truth) == len(crosser) == len(boxes):
        raise CrossingError(f"box counts differ: {len(truth)} ground truth, {len(crosser)} "
                            f"look-alike, {len(boxes)} tracked")
    touching = np.flatnonzero(_overlap(truth, crosser) > 0)
    if not len(touching) or touching[0] == 0:
        return "no crossing"
    first, last = touching[0], touching[-1]
    on_truth, on_crosser = _overlap(boxes, truth), _overlap(boxes, crosser)
    if not (on_truth[first - 1] >= ON_IOU and on_truth[first - 1] > on_crosser[first - 1]):
        return "lost before"
    after = [t for t in range(last + 1, len(truth)) if np.all(np.isfinite(crosser[t]))][:window]
    if not after:
        return "no crossing"
    a, c = on_truth[after], on_crosser[after]
    if np.sum((a >= ON_IOU) & (a > c)) * 2 > len(after):
        return "kept"
    if np.sum((c >= ON_IOU) & (c > a)) * 2 > len(after):
        return "switched"
    return "lost"


def score_results(root: Path, sequences: Sequence, result_dir: Path, tracker: str,
                  window: int = WINDOW) -> Dict[str, str]:
    """The outcome of each of the loaded ``sequences`` of the crossing set ``root`` for the
    results of ``tracker`` under ``result_dir`` (the dataset's result folder, e.g.
    ``results/custom``)."""
    outcomes = {}
    for seq in sequences:
        crosser_file = Path(root) / seq.name / CROSSER_FILE
        if not crosser_file.is_file():
            raise CrossingError(f"{crosser_file} is missing: {root} is not a crossing set; make "
                                f"one with `python tools/prepare_data.py tuning --crossing "
                                f"--out DIR`")
        boxes, _ = load_result(Path(result_dir), tracker, seq, "otb")
        outcomes[seq.name] = crossing_outcome(seq.boxes, read_boxes(crosser_file), boxes, window)
    return outcomes


def tally(outcomes: Mapping[str, str]) -> Dict[str, object]:
    """Counts of each outcome, and the share kept of the sequences where the tracker met the
    look-alike on target (kept, switched or lost)."""
    counts = {name: sum(1 for o in outcomes.values() if o == name) for name in OUTCOMES}
    met = counts["kept"] + counts["switched"] + counts["lost"]
    return {**counts, "met": met, "kept_share": counts["kept"] / met if met else None}


def paired(outcomes: Mapping[str, str], base: Mapping[str, str]) -> Dict[str, int]:
    """Sequences kept by one and not the other, of those both met on target."""
    shared = [s for s in outcomes if s in base
              and outcomes[s] not in ("lost before", "no crossing")
              and base[s] not in ("lost before", "no crossing")]
    return {"both_met": len(shared),
            "kept_only_here": sum(outcomes[s] == "kept" != base[s] for s in shared),
            "kept_only_by_base": sum(base[s] == "kept" != outcomes[s] for s in shared)}


def is_crossing_set(root: Path, sequences: Sequence) -> bool:
    """Whether each of the loaded ``sequences`` of ``root`` has its look-alike's boxes beside
    it."""
    return bool(sequences) and all((Path(root) / seq.name / CROSSER_FILE).is_file()
                                   for seq in sequences)


def crossing_rows(outcomes: Mapping[str, Mapping[str, str]],
                  base: Optional[str] = None) -> List[Dict[str, object]]:
    """One row per tracker of ``outcomes`` (tracker -> sequence -> outcome): its ``tally``,
    and, for every tracker but ``base``, its ``paired`` counts against ``base``."""
    rows = []
    for name, result in outcomes.items():
        row = {"tracker": name, **tally(result)}
        if base is not None and name != base:
            row.update(paired(result, outcomes[base]))
        rows.append(row)
    return rows


def write_report(out: Path, root: Path, record: Dict[str, object],
                 rows: Sequence[Dict[str, object]], table: str) -> List[Path]:
    """``REPORT_FILES`` in ``out``, each atomically: the ``record`` (it should hold ``rows``
    and the outcomes) as JSON, the ``table`` as markdown and a bar of outcomes per tracker on
    the crossing set ``root``."""
    paths = [Path(out) / name for name in REPORT_FILES]
    write_record(out, "crossings", record, table)
    outcome_plot({row["tracker"]: row for row in rows}, OUTCOMES,
                 f"Whom the trackers follow after a look-alike passes ({Path(root).name})",
                 paths[2])
    return paths


def markdown(rows: Sequence[Dict[str, object]], base: Optional[str] = None) -> str:
    """Rows of ``{"tracker": name, **tally(...)}`` (with ``paired`` counts against ``base``
    where given) as a markdown table."""
    head = "| tracker | kept | switched | lost | lost before | no crossing | kept of met |"
    rule = "|---|---|---|---|---|---|---|"
    if base:
        head += f" kept here, not by {base} / by {base}, not here |"
        rule += "---|"
    lines = [head, rule]
    for row in rows:
        share = "" if row["kept_share"] is None else f"{row['kept_share']:.2f}"
        line = (f"| {row['tracker']} | {row['kept']} | {row['switched']} | {row['lost']} | "
                f"{row['lost before']} | {row['no crossing']} | {share} |")
        if base:
            line += (f" {row['kept_only_here']} / {row['kept_only_by_base']} |"
                     if "kept_only_here" in row else " |")
        lines.append(line)
    return "\n".join(lines) + "\n"
