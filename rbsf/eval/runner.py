"""Run trackers over benchmark sequences and store results in the got10k toolkit's layout.

Layouts (``result_dir`` is the dataset's own folder, e.g. ``results/OTB100``):

* OTB / UAV123 / custom: ``<tracker>/<seq>.txt`` and ``<tracker>/times/<seq>_time.txt``
  (where ``ExperimentOTB.report`` reads them);
* GOT-10k: ``<tracker>/<seq>/<seq>_001.txt`` and ``<tracker>/<seq>/<seq>_time.txt``.

Every file is written to a temporary name and renamed, times first, so a box file exists only
for a finished sequence; a rerun skips those. ``make_jobs`` checks that every result file it
plans can be written, so a bad result folder is reported before any tracking.

Trackers come as *factories*: picklable, hashable callables that return a tracker object (the
got10k ``Tracker`` interface: ``init(image, box)``, ``update(image) -> box``), keyed by the name
the results are filed under. Sequences run in this process or in a pool of processes, each of
which builds every tracker it needs once. Which names exist and what builds them is the tools'
business (``trackers.registry``), not the library's.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from rbsf.errors import RBSFError
from rbsf.files import atomic_open, check_writable


class EvalError(RBSFError, RuntimeError):
    """A benchmark cannot be run or scored; the message says what is wrong and how to fix it."""


TrackerFactory = Callable[[], object]


def result_paths(result_dir: Path, tracker: str, seq: str, got10k: bool) -> Tuple[Path, Path]:
    """(boxes file, times file) of one tracker on one sequence."""
    base = Path(result_dir) / tracker
    if got10k:
        return base / seq / f"{seq}_001.txt", base / seq / f"{seq}_time.txt"
    return base / f"{seq}.txt", base / "times" / f"{seq}_time.txt"


def write_atomic(path: Path, array: np.ndarray, fmt: str, delimiter: str = ",") -> None:
    """``np.savetxt`` to a temporary file next to ``path``, then rename it over ``path``."""
    with atomic_open(path) as handle:
        np.savetxt(handle, array, fmt=fmt, delimiter=delimiter)


def write_result(result_dir: Path, tracker: str, seq: str, boxes: np.ndarray, times: np.ndarray,
                 got10k: bool) -> None:
    """Store one sequence's boxes and per-frame times (times first, boxes mark completion)."""
    box_file, time_file = result_paths(result_dir, tracker, seq, got10k)
    write_atomic(time_file, np.asarray(times, dtype=np.float64).reshape(-1, 1), "%.8f")
    write_atomic(box_file, np.asarray(boxes, dtype=np.float64), "%.3f")


def is_finished(result_dir: Path, tracker: str, seq: str, got10k: bool) -> bool:
    """True when both result files of the sequence exist."""
    return all(p.is_file() for p in result_paths(result_dir, tracker, seq, got10k))


def read_frame(path: str) -> Image.Image:
    """Open one frame as an RGB PIL image; ``EvalError`` naming the file when it is unreadable."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise EvalError(f"cannot read frame {path} ({exc}); re-extract or re-copy this "
                        f"sequence, or leave it out with --sequences") from exc


def track_sequence(tracker, frames: Sequence[str], first_box: np.ndarray
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """One-pass tracking: boxes (frame 0 = ``first_box``) and the seconds spent per frame."""
    boxes = np.zeros((len(frames), 4))
    boxes[0] = first_box
    times = np.zeros(len(frames))
    for index, frame in enumerate(frames):
        image = read_frame(frame)
        start = time.perf_counter()
        if index == 0:
            tracker.init(image, first_box)
        else:
            boxes[index] = tracker.update(image)
        times[index] = time.perf_counter() - start
    return boxes, times


@dataclass(frozen=True)
class Job:
    """One tracker on one sequence."""

    tracker: str                  # the name its results are filed under
    factory: TrackerFactory       # builds the tracker (in the worker process)
    seq: str
    frames: Tuple[str, ...]
    first_box: Tuple[float, float, float, float]
    result_dir: str
    got10k: bool


_WORKER_TRACKERS: Dict[TrackerFactory, object] = {}


def run_job(job: Job) -> str:
    """Track one sequence and store its result (trackers are cached per process)."""
    tracker = _WORKER_TRACKERS.get(job.factory)
    if tracker is None:
        tracker = _WORKER_TRACKERS[job.factory] = job.factory()
    try:
        boxes, times = track_sequence(tracker, job.frames, np.asarray(job.first_box))
    except ValueError as exc:
        raise EvalError(f"{job.tracker} on sequence {job.seq}: {exc}") from exc
    write_result(Path(job.result_dir), job.tracker, job.seq, boxes, times, job.got10k)
    return job.seq


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_jobs(jobs: List[Job], workers: int = 1,
             progress: Optional[Callable[[str], None]] = None, spawn: bool = False) -> None:
    """Run jobs in this process (``workers`` = 1) or in a pool of ``workers`` processes,
    started fresh with "spawn" when ``spawn`` is set (trackers on a GPU: CUDA does not survive
    a fork)."""
    if workers <= 1:
        for job in jobs:
            run_job(job)
            if progress:
                progress(job.seq)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn") if spawn else None
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(threads,),
                             mp_context=context) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in as_completed(futures):
            seq = future.result()
            if progress:
                progress(seq)


def make_jobs(trackers: Mapping[str, TrackerFactory], sequences, result_dir: Path,
              got10k: bool) -> List[Job]:
    """Jobs for every (tracker, sequence) pair without a finished result; ``trackers`` maps
    the name results are filed under to the tracker's factory. ``OutputPathError`` when a
    result file cannot be written."""
    jobs = []
    for name, factory in trackers.items():
        for seq in sequences:
            if is_finished(result_dir, name, seq.name, got10k):
                continue
            for path in result_paths(result_dir, name, seq.name, got10k):
                check_writable(path, "result file")
            jobs.append(Job(name, factory, seq.name, tuple(str(f) for f in seq.frames),
                            tuple(float(v) for v in np.asarray(seq.boxes)[0]),
                            str(result_dir), got10k))
    return jobs
