"""OpenCV's classical trackers (CSRT, KCF, MIL) as peers, in the same result layout and report.

    python benchmarks/classical_trackers.py --root data/cache/heldout-real --dataset heldout-real
    python benchmarks/classical_trackers.py --root DIR --dataset NAME --with SiamFC,RB-SF

The trackers come with opencv-contrib, whose ``cv2`` clashes with the project's opencv-python
when both are installed in one environment. They run in a separate environment (default
/work/venvs/contrib, made with ``python -m venv /work/venvs/contrib &&
/work/venvs/contrib/bin/pip install -r requirements-contrib.txt``:
opencv-contrib-python-headless and numpy only) as a subprocess: this script hands it the frame
paths and first box of each sequence, it writes ``<result-dir>/<dataset>/<tracker>/<seq>.txt`` and
``times/<seq>_time.txt`` (the got10k toolkit's OTB layout, as ``tools/eval.py`` writes), and the
report (``rbsf.eval.report``) scores them beside any of our trackers already in that result
folder (``--with``). Finished sequences are skipped on a rerun.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from rbsf.data import load_sequences
from rbsf.eval.report import build_summary, markdown_table, write_report
from rbsf.eval.runner import is_finished, read_identity
from tools.cli import ArgumentParser, choose, fail, run_tool, split_list

PEERS = ("CSRT", "KCF", "MIL")
DEFAULT_PYTHON = Path("/work/venvs/contrib/bin/python")

# Runs inside the contrib environment: only cv2 and numpy there.
WORKER = r'''
import json, os, sys, time
import cv2, numpy as np
jobs = json.load(open(sys.argv[1]))
def make(name):
    return getattr(cv2, f"Tracker{name}_create", None) or getattr(cv2.legacy, f"Tracker{name}_create")
def atomic(path, array, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    np.savetxt(tmp, array, fmt=fmt, delimiter=",")
    os.replace(tmp, path)
for job in jobs:
    tracker = make(job["tracker"])()
    boxes, times = [], []
    for k, frame in enumerate(job["frames"]):
        image = cv2.imread(frame, cv2.IMREAD_COLOR)
        start = time.perf_counter()
        if k == 0:
            box = job["first_box"]
            tracker.init(image, tuple(int(round(v)) for v in box))
        else:
            ok, found = tracker.update(image)
            box = [float(v) for v in found] if ok else boxes[-1]
        times.append(time.perf_counter() - start)
        boxes.append(list(box))
    atomic(job["times"], np.array(times).reshape(-1, 1), "%.8f")
    atomic(job["boxes"], np.array(boxes, float), "%.3f")
    print(job["tracker"], job["seq"], flush=True)
'''


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="OTB-layout root of the sequences")
    p.add_argument("--dataset", default="custom",
                   help="name of the result / report folder (tools/eval.py uses the benchmark's "
                        "name; 'custom' for --dataset custom)")
    p.add_argument("--trackers", default=",".join(PEERS), help="comma-separated of CSRT,KCF,MIL")
    p.add_argument("--with", dest="others", default="",
                   help="our trackers' result names to report beside them (run tools/eval.py "
                        "with the same --root and --result-dir first), e.g. SiamFC,XNOR-SF,RB-SF")
    p.add_argument("--python", type=Path, default=DEFAULT_PYTHON,
                   help="python of the environment with opencv-contrib-python-headless")
    p.add_argument("--result-dir", type=Path, default=Path("results"))
    p.add_argument("--report-dir", type=Path, default=Path("reports"))
    return p.parse_args(argv)


def check_contrib(python: Path) -> str:
    """OpenCV version of the contrib environment; exits with the fix when it lacks the trackers."""
    if not python.is_file():
        raise SystemExit(fail(f"no python at {python}; make the contrib environment: "
                              f"python -m venv {python.parents[1]} && {python.parent}/pip "
                              f"install -r requirements-contrib.txt"))
    probe = ("import cv2; ok = all(hasattr(cv2, f'Tracker{n}_create') or hasattr(getattr(cv2, "
             "'legacy', None), f'Tracker{n}_create') for n in ('CSRT','KCF','MIL')); "
             "print(cv2.__version__ if ok else 'missing')")
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if done.returncode != 0 or done.stdout.strip() in ("", "missing"):
        raise SystemExit(fail(f"{python} has no opencv-contrib with CSRT/KCF/MIL; install "
                              f"opencv-contrib-python-headless there (requirements-contrib.txt)"))
    return done.stdout.strip()


def run_jobs(python: Path, jobs: List[dict]) -> bool:
    """Run the peer jobs (tracker, seq, frames, first_box, boxes, times) in the contrib
    environment's ``python``; False when its worker failed (finished jobs are written)."""
    if not jobs:
        return True
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        (Path(tmp) / "worker.py").write_text(WORKER)
        done = subprocess.run([str(python), str(Path(tmp) / "worker.py"),
                               str(Path(tmp) / "jobs.json")])
    return done.returncode == 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    peers = choose(args.trackers, PEERS, "--trackers")
    sequences = load_sequences(str(args.root))
    version = check_contrib(args.python)
    result_dir = args.result_dir / args.dataset
    others = split_list(args.others)
    for name in others:
        missing = [s.name for s in sequences if not is_finished(result_dir, name, s.name)]
        if missing:
            return fail(f"no {name} results for {', '.join(missing[:5])} in {result_dir}; run "
                        f"tools/eval.py --dataset custom --root {args.root} first")
    jobs = []
    for name in peers:
        for seq in sequences:
            if is_finished(result_dir, name, seq.name):
                continue
            jobs.append({"tracker": name, "seq": seq.name, "frames": list(seq.frames),
                         "first_box": [float(v) for v in seq.boxes[0]],
                         "boxes": str(result_dir / name / f"{seq.name}.txt"),
                         "times": str(result_dir / name / "times" / f"{seq.name}_time.txt")})
    print(f"OpenCV {version} (contrib): {len(jobs)} tracker-sequence runs to do")
    if not run_jobs(args.python, jobs):
        return fail("the contrib worker failed; finished sequences are kept, rerun to continue")
    recorded = {name: read_identity(result_dir, name) for name in others}
    settings = {name: r["settings"] for name, r in recorded.items()
                if r is not None and "settings" in r}
    summary = build_summary(args.dataset, "otb", sequences, result_dir, others + peers,
                            settings=settings, root=args.root)
    summary["peers_opencv_version"] = version
    for path in write_report(summary, args.report_dir / args.dataset):
        print(f"wrote {path}")
    print(markdown_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
