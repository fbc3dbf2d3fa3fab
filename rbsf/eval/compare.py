"""Paired, per-sequence comparison of trackers in one report (``summary.json``).

Two trackers' dataset scores differ by chance as much as by merit when a few sequences are
won or lost outright. Measured on the same sequences, the per-sequence difference to a base
tracker has a mean (equal to the difference of the dataset scores, for scores that are
per-sequence means) and a standard error, and the counts of sequences ahead, level and behind
say whether a gain is broad or rests on a few sequences. Sequences that share a target object
(or a background) are not independent draws: the standard error clustered by such groups
treats each group as one draw.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence

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


def clustered_error(diff: np.ndarray, groups: Sequence[str]) -> Optional[float]:
    """Standard error of the mean of ``diff`` when the values of one group are one draw (the
    cluster-robust estimate with the small-sample factor G / (G - 1) over G groups): equal to
    the plain standard error when every value is its own group; None for fewer than two
    groups."""
    labels = np.asarray(groups)
    names = np.unique(labels)
    if len(names) < 2:
        return None
    deviation = diff - diff.mean()
    sums = np.array([deviation[labels == name].sum() for name in names])
    return float(math.sqrt(len(names) / (len(names) - 1) * (sums ** 2).sum()) / len(diff))


def compare(summary: Mapping, base: str, metric: str = "success_auc", margin: float = 0.02,
            groups: Optional[Mapping[str, str]] = None) -> List[Dict[str, object]]:
    """One row per tracker of the report, the base first: its mean ``metric`` over the
    sequences all trackers share, and against the base the mean per-sequence difference, its
    standard error (None for one sequence) and the sequences where it is ahead or behind by
    more than ``margin``, or level. With ``groups`` (sequence -> group, e.g. its target
    object), each row also holds the number of groups and the standard error clustered by
    them (:func:`clustered_error`)."""
    if not (math.isfinite(margin) and margin >= 0):
        raise CompareError(f"margin must be a finite number >= 0, got {margin!r}")
    names = [base] + [name for name in summary.get("trackers", {}) if name != base]
    scores = {name: per_sequence(summary, name, metric) for name in names}
    shared = sorted(set.intersection(*(set(s) for s in scores.values())))
    if not shared:
        raise CompareError("the trackers of the report share no sequence")
    if groups is not None:
        ungrouped = [s for s in shared if s not in groups]
        if ungrouped:
            raise CompareError(f"no group is given for {len(ungrouped)} sequence(s), e.g. "
                               f"{ungrouped[0]!r}")
        labels = [groups[s] for s in shared]
    reference = np.array([scores[base][s] for s in shared])
    rows = []
    for name in names:
        values = np.array([scores[name][s] for s in shared])
        diff = values - reference
        error: Optional[float] = (float(diff.std(ddof=1) / math.sqrt(len(diff)))
                                  if len(diff) > 1 else None)
        row = {"tracker": name, "sequences": len(shared), "mean": float(values.mean()),
               "difference": float(diff.mean()), "standard_error": error,
               "ahead": int((diff > margin).sum()), "behind": int((diff < -margin).sum()),
               "level": int((np.abs(diff) <= margin).sum())}
        if groups is not None:
            row.update(groups=len(set(labels)), clustered_error=clustered_error(diff, labels))
        rows.append(row)
    return rows


def _spread(error: Optional[float]) -> str:
    return "" if error is None else f" ± {error:.3f}"


def markdown(rows: List[Dict[str, object]], metric: str, margin: float,
             grouped_by: str = "group") -> str:
    """The rows of :func:`compare` as a markdown table (the base in the first row), with a
    column of the clustered standard error when the rows hold one (``grouped_by`` names what
    the groups are, e.g. "target")."""
    base = rows[0]["tracker"]
    grouped = "clustered_error" in rows[0]
    caption = (f"{metric} per sequence against {base}, over {rows[0]['sequences']} sequences "
               f"(ahead / behind: by more than {margin:g}; ± is the standard error of the mean "
               f"difference")
    header, rule = f"| tracker | {metric} | minus {base} |", "|---|---|---|"
    if grouped:
        caption += f"; clustered: that error with the sequences of one {grouped_by} as one draw"
        header += f" clustered by {grouped_by} ({rows[0]['groups']} groups) |"
        rule += "---|"
    lines = [caption + ")", "", header + " ahead | level | behind |", rule + "---|---|---|"]
    for row in rows:
        clustered = f"{_spread(row['clustered_error']).strip() or '-'} | " if grouped else ""
        lines.append(f"| {row['tracker']} | {row['mean']:.3f} | {row['difference']:+.3f}"
                     f"{_spread(row['standard_error'])} | {clustered}{row['ahead']} | "
                     f"{row['level']} | {row['behind']} |")
    return "\n".join(lines) + "\n"
