"""Benchmark trackers (SiamFC teacher, XNOR-SF, RB-SF) and write reports and plots.

    python tools/eval.py --dataset custom                      # the shipped sample sequences
    python tools/eval.py --dataset OTB100 --workers 2
    python tools/eval.py --dataset LaSOT                       # the 280 test sequences
    python tools/eval.py --dataset VOT2018                     # supervised: accuracy, robustness
    python tools/eval.py --dataset GOT10k --subset test        # submission archives
    python tools/eval.py --dataset TrackingNet                 # submission archives

Results go to <result-dir>/<dataset>/<tracker>/ in the got10k toolkit's layout (a rerun skips
finished sequences); reports to <report-dir>/<dataset>/: summary.json, summary.md (Table 5
layout) and plots (success_plot.png, precision_plot.png; LaSOT also norm_precision_plot.png;
VOT ar_plot.png). On a crossing set (`tools/prepare_data.py ... --crossing`: a look-alike passes
each target) the report also counts whom each tracker follows after the crossing (kept,
switched, lost: crossings.json, crossings.md, crossings.png; `rbsf.eval.crossings`).
Nothing is ever downloaded: the root is checked first and a missing or
partial one is one error line. Trackers run with --params (default: the weights folder's
tracking.json, tuned for those weights, else SiamFC's reference settings); the report lists the
settings that differ from the reference. Every result and report file is checked writable
before tracking starts, and a result folder of other weights or settings is refused (its
tracker.json says which); a tracker whose weights are an unfinished training checkpoint gets a
warning line and is marked (unfinished) in the report.
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from tqdm import tqdm

from rbsf.devices import check_device
from rbsf.eval import crossings
from rbsf.eval.datasets import BENCHMARKS, not_found, resolve_root, select_sequences
from rbsf.eval.loading import load_benchmark
from rbsf.eval.report import (build_summary, markdown_table, report_files, submission_archives,
                              write_report)
from rbsf.eval.runner import make_jobs, run_jobs
from rbsf.files import check_writable
from tools.cli import ArgumentParser, fail, positive_int, run_tool, split_list
from trackers.registry import (PARAMS_HELP, SHIPPED_WEIGHTS, TRACKERS, factories, params_file,
                               parse_names, tracker_params, unfinished)
from trackers.siamfc import changed_params


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Run trackers on a tracking benchmark and report AO/SR or success/precision.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", choices=list(BENCHMARKS), default="custom",
                        help="benchmark (layouts and roots: data/README.md); LaSOT = its test "
                             "split, TrackingNet = its test set (submission archives), VOT = "
                             "the supervised experiment; custom = any folder of OTB-layout "
                             "sequences (<Seq>/img/*.jpg + <Seq>/groundtruth_rect.txt)")
    parser.add_argument("--root", help="dataset root (default: data/<dataset>, e.g. data/OTB, "
                        "data/NfS, data/VOT2018, or its environment variable, e.g. RBSF_OTB, "
                        "RBSF_NFS, RBSF_VOT2018; custom: data/sample/otb)")
    parser.add_argument("--subset", choices=("val", "test"), default="val",
                        help="GOT-10k subset (test: no ground truth, writes submission archives)")
    parser.add_argument("--trackers", default="siamfc,xnor,rbsf",
                        help=f"comma-separated trackers from {', '.join(TRACKERS)} "
                             "(siamfc = the full-precision teacher)")
    parser.add_argument("--weights-dir", type=Path, default=SHIPPED_WEIGHTS,
                        help="folder with <tracker>.pt, or a training output folder with "
                             "<stage>/last.pt (stage teacher, xnor, rbsf)")
    parser.add_argument("--params", metavar="PATH", help=PARAMS_HELP)
    parser.add_argument("--result-dir", type=Path, default=Path("results"),
                        help="raw tracking results, <result-dir>/<dataset>/<tracker>/...; finished "
                             "sequences are skipped, so delete a tracker's folder after "
                             "changing its weights")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"),
                        help="reports and plots, <report-dir>/<dataset>/")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="sequences tracked in parallel processes")
    parser.add_argument("--device", default="cpu",
                        help="where the networks run: cpu or cuda (the packed tracker: cpu only)")
    parser.add_argument("--sequences", help="comma-separated subset of sequence names")
    parser.add_argument("--allow-partial", action="store_true",
                        help="evaluate the sequences that are present when some are missing "
                             "(the report says so)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    benchmark = BENCHMARKS[args.dataset]
    subset = args.subset if benchmark.layout == "got10k" else None
    keys = parse_names(args.trackers)
    wanted = split_list(args.sequences) if args.sequences else None
    if wanted == []:
        return fail(f"--sequences names no sequence ({args.sequences!r}); give comma-separated "
                    f"names, or leave it out to evaluate them all")
    check_device(args.device)
    root = resolve_root(benchmark, args.root)
    names, missing = select_sequences(benchmark, root, subset, wanted, args.allow_partial)
    params = tracker_params(params_file(args.weights_dir, args.params), keys)
    trackers = factories(keys, args.weights_dir, args.device, params)
    notes = {name: note for name, factory in trackers.items()
             if (note := unfinished(factory.weights))}
    unfound = not_found(benchmark, len(names) + len(missing), wanted)
    if missing or unfound:
        print(f"warning: {len(missing) + unfound} sequence(s) missing, evaluating the "
              f"{len(names)} present (--allow-partial)", file=sys.stderr)
    for name, note in notes.items():
        print(f"warning: {name} runs {trackers[name].weights}, not a finished model ({note}); "
              f"the report marks it (unfinished)", file=sys.stderr)
    sequences = load_benchmark(benchmark, root, subset, names)
    result_dir = args.result_dir / benchmark.name
    report_dir = args.report_dir / benchmark.name
    submission = benchmark.submission(subset)
    crossing = benchmark.protocol == "otb" and crossings.is_crossing_set(root, sequences)
    crossing_files = [report_dir / name for name in crossings.REPORT_FILES] if crossing else []
    for path in report_files(report_dir, list(trackers), submission, benchmark.protocol) + \
            crossing_files:
        check_writable(path, "report file")
    jobs = make_jobs(trackers, sequences, result_dir, benchmark.results)
    skipped = len(trackers) * len(sequences) - len(jobs)
    if skipped:
        print(f"{skipped} finished sequence result(s) found in {result_dir}, skipping them")
    with tqdm(total=len(jobs), desc=f"tracking {benchmark.name}", unit="seq") as bar:
        run_jobs(jobs, args.workers, progress=lambda seq: bar.update(1),
                 spawn=args.device != "cpu")
    names = list(trackers)
    if submission:
        for archive in submission_archives(result_dir, names, [s.name for s in sequences],
                                           report_dir, benchmark.protocol):
            print(f"submission archive: {archive} (upload it to the {benchmark.name} "
                  f"evaluation server)")
        return 0
    summary = build_summary(benchmark.name, benchmark.protocol, sequences, result_dir, names,
                            missing, subset, notes, unfound,
                            {name: changed_params(f.params) for name, f in trackers.items()},
                            root)
    for path in write_report(summary, report_dir):
        print(f"wrote {path}")
    print(markdown_table(summary))
    if crossing:
        print(crossing_report(root, sequences, result_dir, names, report_dir))
    return 0


def crossing_report(root: Path, sequences: list, result_dir: Path, names: List[str],
                    report_dir: Path) -> str:
    """Score and write whom each tracker ``names`` followed on the loaded ``sequences`` of a
    crossing set; returns the table."""
    outcomes = {name: crossings.score_results(root, sequences, result_dir, name)
                for name in names}
    rows = crossings.crossing_rows(outcomes)
    table = crossings.markdown(rows)
    for path in crossings.write_report(report_dir, root, {"root": str(root), "rows": rows,
                                                          "outcomes": outcomes}, rows, table):
        print(f"wrote {path}")
    return table


if __name__ == "__main__":
    sys.exit(run_tool(main, interrupted_hint="finished sequences are kept, rerun to continue"))
