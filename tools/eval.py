"""Benchmark trackers (SiamFC teacher, XNOR-SF, RB-SF) and write reports and plots.

    python tools/eval.py --dataset custom                      # the shipped sample sequences
    python tools/eval.py --dataset OTB100 --workers 2
    python tools/eval.py --dataset GOT10k --subset test        # submission archives

Results go to <result-dir>/<dataset>/<tracker>/ in the got10k toolkit's layout (a rerun skips
finished sequences); reports to <report-dir>/<dataset>/: summary.json, summary.md (Table 5
layout), success_plot.png, precision_plot.png. Nothing is ever downloaded.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from tqdm import tqdm

from rbsf.checkpoint import CheckpointError
from rbsf.devices import check_device
from rbsf.eval.datasets import BENCHMARKS, resolve_root, select_sequences
from rbsf.eval.loading import load_benchmark
from rbsf.eval.report import build_summary, markdown_table, submission_archives, write_report
from rbsf.eval.runner import TRACKERS, EvalError, make_jobs, run_jobs, tracker_specs

REPO = Path(__file__).resolve().parents[1]
EXIT_BAD_INPUT = 2


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run trackers on a tracking benchmark and report AO/SR or success/precision.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", choices=list(BENCHMARKS), default="custom",
                        help="benchmark; custom = any folder of OTB-layout sequences "
                             "(<Seq>/img/*.jpg + <Seq>/groundtruth_rect.txt)")
    parser.add_argument("--root", help="dataset root (default: data/GOT-10k, data/OTB, data/UAV123 "
                        "or env RBSF_GOT10K / RBSF_OTB / RBSF_UAV123; custom: data/sample/otb)")
    parser.add_argument("--subset", choices=("val", "test"), default="val",
                        help="GOT-10k subset (test: no ground truth, writes submission archives)")
    parser.add_argument("--trackers", default="siamfc,xnor,rbsf",
                        help=f"comma-separated trackers from {', '.join(TRACKERS)} "
                             "(siamfc = the full-precision teacher)")
    parser.add_argument("--weights-dir", type=Path, default=REPO / "data" / "weights",
                        help="folder with <tracker>.pt, or a training output folder with "
                             "<stage>/last.pt (stage teacher, xnor, rbsf)")
    parser.add_argument("--result-dir", type=Path, default=Path("results"),
                        help="raw tracking results, <result-dir>/<dataset>/<tracker>/...; finished "
                             "sequences are skipped, so delete a tracker's folder after "
                             "changing its weights")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"),
                        help="reports and plots, <report-dir>/<dataset>/")
    parser.add_argument("--workers", type=int, default=1,
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
    keys = [k.strip() for k in args.trackers.split(",") if k.strip()]
    wanted = [s.strip() for s in args.sequences.split(",")] if args.sequences else None
    if args.workers < 1:
        raise EvalError(f"--workers must be at least 1, got {args.workers}")
    try:
        check_device(args.device)
    except ValueError as exc:
        raise EvalError(str(exc)) from exc
    root = resolve_root(benchmark, args.root)
    names, missing = select_sequences(benchmark, root, subset, wanted, args.allow_partial)
    specs = tracker_specs(keys, args.weights_dir, device=args.device)
    if missing:
        print(f"warning: {len(missing)} sequence(s) missing, evaluating the {len(names)} present "
              f"(--allow-partial)", file=sys.stderr)
    sequences = load_benchmark(benchmark, root, subset, names)
    result_dir = args.result_dir / benchmark.name
    got10k = benchmark.layout == "got10k"
    jobs = make_jobs(specs, sequences, result_dir, got10k)
    skipped = len(specs) * len(sequences) - len(jobs)
    if skipped:
        print(f"{skipped} finished sequence result(s) found in {result_dir}, skipping them")
    with tqdm(total=len(jobs), desc=f"tracking {benchmark.name}", unit="seq") as bar:
        run_jobs(jobs, args.workers, progress=lambda seq: bar.update(1))
    report_dir = args.report_dir / benchmark.name
    names = [spec.name for spec in specs]
    if got10k and subset == "test":
        for archive in submission_archives(result_dir, names, [s.name for s in sequences],
                                           report_dir):
            print(f"submission archive: {archive} (upload it to the GOT-10k evaluation server)")
        return 0
    summary = build_summary(benchmark.name, benchmark.protocol, sequences, result_dir, names,
                            missing, subset)
    for path in write_report(summary, report_dir):
        print(f"wrote {path}")
    print(markdown_table(summary))
    return 0


def run(argv: Optional[List[str]] = None) -> int:
    """``main`` with bad input reported as one ``error:`` line on stderr and exit code 2."""
    try:
        return main(argv)
    except (EvalError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: finished sequences are kept, rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
