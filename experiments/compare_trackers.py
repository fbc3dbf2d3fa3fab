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

Pooled over several sets of sequences, with the standard error clustered by target object:

    python -m experiments.compare_trackers --pool --cluster-by target --base "RB-SF packed" \\
        runs/i/shipped/custom/summary.json "runs/i/new/custom/summary.json=new" \\
        runs/j/shipped/custom/summary.json "runs/j/new/custom/summary.json=new"

``--pool`` joins reports of different sequence folders (each report's ``root``): a tracker's
scores on every folder count as one tracker's, its sequences named ``SET/SEQUENCE`` (SET: the
folder's name); a tracker without a report on every folder is left out, and the table says
so. ``--cluster-by`` reads each folder's ``dataset.json`` (the rendered sets of
``tools/prepare_data.py`` name every sequence's target stamp, the newer ones its background
too) and adds the standard error with the sequences of one target (or background) as one
draw, pooled across folders by name.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

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


def merge_reports(specs: List[str],
                  pool: bool = False) -> Tuple[dict, Dict[str, str], List[str]]:
    """One report of the trackers of the reports ``PATH`` or ``PATH=LABEL`` (each tracker of a
    labelled report named ``LABEL: <tracker>``), the sequence folder of each of its sequences
    (empty when the reports name none) and the trackers left out; ``CompareError`` when two
    reports of one folder share a tracker name, or the reports scored different folders and
    ``pool`` is off. With ``pool``, each tracker's scores on every folder are joined
    (sequences named ``SET/SEQUENCE``); a tracker missing on some folder is left out."""
    by_root: Dict[str, dict] = {}
    roots = {}
    for spec in specs:
        path, _, label = spec.partition("=")
        summary = read_summary(Path(path))
        root = os.path.normpath(summary["root"]) if summary.get("root") else ""
        if pool and not root:
            raise CompareError(f"{path} names no sequence folder ('root'), so --pool cannot "
                               f"tell its sequences from another report's")
        roots[path] = root
        if not pool and len(set(roots.values())) > 1:
            raise CompareError("the reports scored different sequences: "
                               + ", ".join(f"{p} on {r}" for p, r in roots.items())
                               + "; give --pool to join them")
        merge_labelled(by_root.setdefault(root, {}), label, summary["trackers"], "reports",
                       CompareError)
    if len(by_root) == 1:
        root, trackers = next(iter(by_root.items()))
        folder = {name: root for scores in trackers.values()
                  for name in scores.get("per_sequence", {})} if root else {}
        return {"trackers": trackers}, folder, []
    sets = {root: Path(root).name for root in by_root}
    if len(set(sets.values())) < len(sets):
        sets = {root: root for root in by_root}
    names = list(dict.fromkeys(name for trackers in by_root.values() for name in trackers))
    everywhere = [n for n in names if all(n in trackers for trackers in by_root.values())]
    pooled: dict = {}
    folder = {}
    for name in everywhere:
        joined = {}
        for root, trackers in by_root.items():
            for sequence, scores in trackers[name].get("per_sequence", {}).items():
                joined[f"{sets[root]}/{sequence}"] = scores
                folder[f"{sets[root]}/{sequence}"] = root
        pooled[name] = {"per_sequence": joined}
    return {"trackers": pooled}, folder, [n for n in names if n not in everywhere]


def sequence_groups(folder: Dict[str, str], cluster_by: str) -> Dict[str, str]:
    """The ``cluster_by`` ("target" or "background") of every sequence of ``folder`` (sequence
    -> its folder, as ``merge_reports`` gives them), read from each folder's ``dataset.json``."""
    if not folder:
        raise CompareError("the reports name no sequence folder ('root'), so --cluster-by has "
                           "no dataset.json to read")
    key = f"{cluster_by}s"
    named: Dict[str, Dict[str, str]] = {}
    for root in sorted(set(folder.values())):
        manifest = Path(root) / "dataset.json"
        try:
            content = json.loads(manifest.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise CompareError(f"cannot read {manifest} for --cluster-by ({reason}); run from "
                               f"the folder the reports' roots are relative to") from None
        if not isinstance(content, dict) or not isinstance(content.get(key), dict):
            raise CompareError(f"{manifest} names no {key}: the rendered sets of "
                               f"tools/prepare_data.py name their targets (newer ones their "
                               f"backgrounds too); real clips name neither")
        named[root] = content[key]
    groups = {}
    for sequence, root in folder.items():
        group = named[root].get(sequence.rpartition("/")[2])
        if group is not None:
            groups[sequence] = group
    return groups


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
    parser.add_argument("--pool", action="store_true",
                        help="join reports of different sequence folders (sequences named "
                             "SET/SEQUENCE; trackers not on every folder are left out)")
    parser.add_argument("--cluster-by", choices=("target", "background"),
                        help="also give the standard error with the sequences of one target "
                             "stamp (or background) as one draw, from each folder's "
                             "dataset.json")
    parser.add_argument("--out", type=Path, help="folder for comparison.json and comparison.md")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def build() -> Tuple[dict, str]:
        merged, folder, left_out = merge_reports(args.summaries, args.pool)
        groups = sequence_groups(folder, args.cluster_by) if args.cluster_by else None
        rows = compare(merged, args.base, args.metric, args.margin, groups)
        table = markdown(rows, args.metric, args.margin, args.cluster_by or "group")
        if left_out:
            table += f"\nLeft out, not on every folder: {', '.join(left_out)}.\n"
        return ({"reports": args.summaries, "metric": args.metric, "margin": args.margin,
                 "pooled": args.pool, "cluster_by": args.cluster_by, "left_out": left_out,
                 "rows": rows}, table)
    return run_record_job(args.out, "comparison", build)


if __name__ == "__main__":
    sys.exit(main())
