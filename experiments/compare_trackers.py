"""Paired comparison of trackers on the same sequences, sequence by sequence, against a base.

    python -m experiments.compare_trackers reports/custom/summary.json --base CSRT
    python -m experiments.compare_trackers runs/ho/reports/custom/summary.json --base "RB-SF packed" \\
        --metric precision_20 --out runs/ho/compare
    python -m experiments.compare_trackers runs/a/reports/custom/summary.json \\
        "runs/b/reports/custom/summary.json=new settings" --base "RB-SF packed"

A report is the ``summary.json`` that ``tools/eval.py`` or ``benchmarks/classical_trackers.py``
wrote. Give several to compare runs of the same sequences: ``PATH=LABEL`` names that report's
trackers ``LABEL: <tracker>``, and trackers of different reports must not share a name. For
every tracker: its mean score over the sequences all trackers share, the mean of its
per-sequence difference to the base with that mean's standard error, and how many sequences it
is ahead, level or behind by more than ``--margin`` (``rbsf.eval.compare``). Prints the table;
with ``--out``, also writes ``OUT/comparison.json`` and ``OUT/comparison.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from experiments import merge_labelled, run_record_job
from rbsf.eval.compare import CompareError, compare, markdown


def read_summary(path: Path) -> dict:
    """The report at ``path``; ``CompareError`` when it is missing or not a report."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompareError(f"cannot read the report {path}: {exc}; give the summary.json that "
                           f"tools/eval.py wrote") from exc
    if not isinstance(summary, dict) or not isinstance(summary.get("trackers"), dict):
        raise CompareError(f"{path} is not a report of tools/eval.py (no 'trackers' object)")
    return summary


def merge_reports(specs: List[str]) -> dict:
    """One report of the trackers of the reports ``PATH`` or ``PATH=LABEL`` (each tracker of a
    labelled report named ``LABEL: <tracker>``); ``CompareError`` when two share a name or the
    reports scored sequences of different roots."""
    trackers: dict = {}
    roots = {}
    for spec in specs:
        path, _, label = spec.partition("=")
        summary = read_summary(Path(path))
        if "root" in summary:
            roots[path] = summary["root"]
        if len(set(roots.values())) > 1:
            raise CompareError("the reports scored different sequences: "
                               + ", ".join(f"{p} on {r}" for p, r in roots.items()))
        merge_labelled(trackers, label, summary["trackers"], "reports", CompareError)
    return {"trackers": trackers}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("summaries", nargs="+", metavar="SUMMARY[=LABEL]",
                        help="reports' summary.json files (LABEL names that report's trackers)")
    parser.add_argument("--base", required=True, help="the tracker the others are compared "
                                                      "to, as the report names it (e.g. CSRT)")
    parser.add_argument("--metric", default="success_auc",
                        help="per-sequence score (default: success_auc; OTB-layout reports "
                             "also hold precision_20 and sr_50)")
    parser.add_argument("--margin", type=float, default=0.02,
                        help="a difference larger than this is ahead / behind (default: 0.02)")
    parser.add_argument("--out", type=Path, help="folder for comparison.json and comparison.md")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def build() -> Tuple[dict, str]:
        rows = compare(merge_reports(args.summaries), args.base, args.metric, args.margin)
        return ({"reports": args.summaries, "metric": args.metric, "margin": args.margin,
                 "rows": rows}, markdown(rows, args.metric, args.margin))
    return run_record_job(args.out, "comparison", build)


if __name__ == "__main__":
    sys.exit(main())
