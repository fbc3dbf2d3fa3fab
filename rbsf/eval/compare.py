"""Paired, per-sequence comparison of trackers in one report (``summary.json``).

Two trackers' dataset scores differ by chance as much as by merit when a few sequences are
won or lost outright. Measured on the same sequences, the per-sequence difference to a base
tracker has a mean (equal to the difference of the dataset scores, for scores that are
per-sequence means) and a standard error, and the counts of sequences ahead, level and behind
say whether a gain is broad or rests on a few sequences.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional

import numpy as np

from rbsf.errors import RBSFError


class CompareError(RBSFError, ValueError):
    """A report that cannot be compared as asked (unknown tracker or score, no sequences)."""


def per_sequence(summary: Mapping, tracker: str, metric: str) -> Dict[str, float]:
    """``metric`` of every sequence of ``tracker`` in a report."""
    trackers = summary.get("trackers", {})
    if tracker not in trackers:
        raise CompareError(f"the report has no tracker {tracker!r}; it has "
                           f"{', '.join(trackers) or 'none'}")
    sequences = trackers[tracker].get("per_sequence") or {}
    if not sequences:
        raise CompareError(f"the report holds no per-sequence scores of {tracker!r}")
    known = sorted(k for k, v in next(iter(sequences.values())).items()
                   if isinstance(v, (int, float)))
    if metric not in known:
        raise CompareError(f"no per-sequence score {metric!r} in the report; "
                           f"choose from {', '.join(known)}")
    return {name: float(scores[metric]) for name, scores in sequences.items()}


def compare(summary: Mapping, base: str, metric: str = "success_auc",
            margin: float = 0.02) -> List[Dict[str, object]]:
    """One row per tracker of the report, the base first: its mean ``metric`` over the
    sequences all trackers share, and against the base the mean per-sequence difference, its
    standard error (None for one sequence) and the sequences where it is ahead or behind by
    more than ``margin``, or level."""
    if not (math.isfinite(margin) and margin >= 0):
        raise CompareError(f"margin must be a finite number >= 0, got {margin!r}")
    names = [base] + [name for name in summary.get("trackers", {}) if name != base]
    scores = {name: per_sequence(summary, name, metric) for name in names}
    shared = sorted(set.intersection(*(set(s) for s in scores.values())))
    if not shared:
        raise CompareError("the trackers of the report share no sequence")
    reference = np.array([scores[base][s] for s in shared])
    rows = []
    for name in names:
        values = np.array([scores[name][s] for s in shared])
        diff = values - reference
        error: Optional[float] = (float(diff.std(ddof=1) / math.sqrt(len(diff)))
                                  if len(diff) > 1 else None)
        rows.append({"tracker": name, "sequences": len(shared), "mean": float(values.mean()),
                     "difference": float(diff.mean()), "standard_error": error,
                     "ahead": int((diff > margin).sum()), "behind": int((diff < -margin).sum()),
                     "level": int((np.abs(diff) <= margin).sum())})
    return rows


def markdown(rows: List[Dict[str, object]], metric: str, margin: float) -> str:
    """The rows of :func:`compare` as a markdown table (the base in the first row)."""
    base = rows[0]["tracker"]
    lines = [f"{metric} per sequence against {base}, over {rows[0]['sequences']} sequences "
             f"(ahead / behind: by more than {margin:g}; ± is the standard error of the mean "
             f"difference)", "",
             f"| tracker | {metric} | minus {base} | ahead | level | behind |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        error = row["standard_error"]
        spread = "" if error is None else f" ± {error:.3f}"
        lines.append(f"| {row['tracker']} | {row['mean']:.3f} | {row['difference']:+.3f}{spread}"
                     f" | {row['ahead']} | {row['level']} | {row['behind']} |")
    return "\n".join(lines) + "\n"
