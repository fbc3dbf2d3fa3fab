"""Run trackers over benchmark sequences and store results in the got10k toolkit's layout.

Layouts (``result_dir`` is the dataset's own folder, e.g. ``results/OTB100``):

* ``"otb"`` (OTB, UAV123, NfS, TColor128, DTB70, LaSOT, TrackingNet, custom):
  ``<tracker>/<seq>.txt`` and ``<tracker>/times/<seq>_time.txt`` (where ``ExperimentOTB.report``
  and its subclasses read them);
* ``"got10k"``: ``<tracker>/<seq>/<seq>_001.txt`` and ``<tracker>/<seq>/<seq>_time.txt``;
* ``"vot"`` (the supervised experiment, ``ExperimentVOT``'s layout):
  ``<tracker>/baseline/<seq>/<seq>_001.txt`` (one per repetition) and ``<seq>_time.txt`` (one
  column per repetition). A record line is ``1`` (the tracker was initialised on this frame),
  ``2`` (it failed here: its box does not overlap the ground truth), ``0`` (skipped after a
  failure) or the box ``x,y,w,h``; five frames after a failure the tracker is initialised again
  on the ground truth. A deterministic tracker (``is_deterministic``) runs once; another runs
  until three repetitions agree, at most 15 (as ``ExperimentVOT.run_supervised``).

Every file is written to a temporary name and renamed; the file written last (boxes in the
one-pass layouts, times in the VOT layout) exists only for a finished sequence, and a rerun
skips those. ``make_jobs`` checks that every result file it plans can be written, so a bad
result folder is reported before any tracking, and, for a factory with an ``identity()`` (a
JSON-able dict: its weights' digest and settings, say), that ``<tracker>/tracker.json`` names
the same tracker, so results of other weights or settings are never mixed in or reused.

Trackers come as *factories*: picklable, hashable callables that return a tracker object (the
got10k ``Tracker`` interface: ``init(image, box)``, ``update(image) -> box``), keyed by the name
the results are filed under. Sequences run in this process or in a pool of processes, each of
which builds every tracker it needs once. Which names exist and what builds them is the tools'
business (``trackers.registry``), not the library's.
"""
from __future__ import annotations

import glob
import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from got10k.utils.metrics import poly_iou
from PIL import Image

from rbsf.devices import fork_safe_opencv
from rbsf.errors import RBSFError
from rbsf.files import atomic_open, check_writable


class EvalError(RBSFError, RuntimeError):
    """A benchmark cannot be run or scored; the message says what is wrong and how to fix it."""


TrackerFactory = Callable[[], object]
RESULT_LAYOUTS = ("otb", "got10k", "vot")
VOT_SKIP = 5            # frames from a failure to the re-initialisation
VOT_REPETITIONS = 15    # at most, for a tracker that is not deterministic


def result_paths(result_dir: Path, tracker: str, seq: str, layout: str) -> Tuple[Path, Path]:
    """(boxes file, times file) of one tracker on one sequence; VOT: the first repetition's
    record and the times file."""
    base = Path(result_dir) / tracker
    if layout == "got10k":
        return base / seq / f"{seq}_001.txt", base / seq / f"{seq}_time.txt"
    if layout == "vot":
        return (vot_record_path(result_dir, tracker, seq, 1),
                base / "baseline" / seq / f"{seq}_time.txt")
    if layout != "otb":
        raise ValueError(f"unknown result layout {layout!r}: choose one of {RESULT_LAYOUTS}")
    return base / f"{seq}.txt", base / "times" / f"{seq}_time.txt"


def vot_record_path(result_dir: Path, tracker: str, seq: str, repetition: int) -> Path:
    """Record of one supervised VOT repetition (1-based)."""
    return Path(result_dir) / tracker / "baseline" / seq / f"{seq}_{repetition:03d}.txt"


def vot_record_files(result_dir: Path, tracker: str, seq: str) -> List[Path]:
    """The stored records of every repetition, in order (the toolkit's ``<seq>_[0-9]*.txt``)."""
    folder = Path(result_dir) / tracker / "baseline" / seq
    pattern = re.compile(re.escape(seq) + r"_[0-9].*\.txt")
    return sorted(p for p in folder.glob(f"{glob.escape(seq)}_*.txt") if pattern.fullmatch(p.name))


def write_atomic(path: Path, array: np.ndarray, fmt: str, delimiter: str = ",") -> None:
    """``np.savetxt`` to a temporary file next to ``path``, then rename it over ``path``."""
    with atomic_open(path) as handle:
        np.savetxt(handle, array, fmt=fmt, delimiter=delimiter)


def write_result(result_dir: Path, tracker: str, seq: str, boxes: np.ndarray, times: np.ndarray,
                 layout: str = "otb") -> None:
    """Store one sequence's boxes and per-frame times (times first, boxes mark completion)."""
    box_file, time_file = result_paths(result_dir, tracker, seq, layout)
    write_atomic(time_file, np.asarray(times, dtype=np.float64).reshape(-1, 1), "%.8f")
    write_atomic(box_file, np.asarray(boxes, dtype=np.float64), "%.3f")


def record_lines(records: Sequence[Sequence[float]]) -> List[str]:
    """VOT record lines: ``1`` / ``2`` / ``0`` for a code, ``x,y,w,h`` for a box."""
    return ["%d" % r[0] if len(r) == 1 else ",".join("%.4f" % v for v in r) for r in records]


def write_vot_result(result_dir: Path, tracker: str, seq: str,
                     records: Sequence[Sequence[Sequence[float]]],
                     times: Sequence[np.ndarray]) -> None:
    """Store the records of every repetition (removing those of an older, longer run), then the
    times (one column per repetition), which mark the sequence finished."""
    for repetition, lines in enumerate(records, start=1):
        with atomic_open(vot_record_path(result_dir, tracker, seq, repetition)) as handle:
            handle.write("\n".join(record_lines(lines)))
    for stale in vot_record_files(result_dir, tracker, seq)[len(records):]:
        stale.unlink()
    time_file = result_paths(result_dir, tracker, seq, "vot")[1]
    write_atomic(time_file, np.stack([np.asarray(t, dtype=np.float64) for t in times], axis=1),
                 "%.8f")


def is_finished(result_dir: Path, tracker: str, seq: str, layout: str = "otb") -> bool:
    """True when both result files of the sequence exist."""
    return all(p.is_file() for p in result_paths(result_dir, tracker, seq, layout))


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


def track_supervised(tracker, frames: Sequence[str], regions: np.ndarray, boxes: np.ndarray
                     ) -> Tuple[List[List[float]], np.ndarray]:
    """One repetition of VOT's supervised experiment: the tracker starts on ``boxes[0]``; when
    its box does not overlap the ground-truth region (polygon IoU within the image <= 0) the
    frame is a failure, the next ``VOT_SKIP - 1`` frames are skipped and it starts again on the
    ground truth. Records (``[1]``, ``[2]``, ``[0]`` or a box) and per-frame seconds (NaN when
    skipped)."""
    records: List[List[float]] = []
    times = np.zeros(len(frames))
    failed_at = None
    for index, frame in enumerate(frames):
        if failed_at is not None and index < failed_at + VOT_SKIP:
            records.append([0])
            times[index] = np.nan
            continue
        image = read_frame(frame)
        start = time.perf_counter()
        if index == 0 or failed_at is not None:
            tracker.init(image, np.asarray(boxes[index]))
            records.append([1])
            failed_at = None
        else:
            box = np.asarray(tracker.update(image), dtype=np.float64)
            if poly_iou(np.asarray(regions[index]), box, bound=image.size)[0] <= 0.0:
                records.append([2])
                failed_at = index
            else:
                records.append(box.tolist())
        times[index] = time.perf_counter() - start
    return records, times


def run_supervised(tracker, frames: Sequence[str], regions: np.ndarray, boxes: np.ndarray
                   ) -> Tuple[List[List[List[float]]], List[np.ndarray]]:
    """Every repetition the toolkit runs: one for a deterministic tracker, else until the first
    three agree, at most ``VOT_REPETITIONS``."""
    records, times = [], []
    for repetition in range(VOT_REPETITIONS):
        if repetition > 0 and getattr(tracker, "is_deterministic", False):
            break
        if repetition == 3 and len({"\n".join(record_lines(r)) for r in records}) == 1:
            break
        lines, seconds = track_supervised(tracker, frames, regions, boxes)
        records.append(lines)
        times.append(seconds)
    return records, times


@dataclass(frozen=True)
class Job:
    """One tracker on one sequence."""

    tracker: str                  # the name its results are filed under
    factory: TrackerFactory       # builds the tracker (in the worker process)
    seq: str
    frames: Tuple[str, ...]
    first_box: Tuple[float, float, float, float]
    result_dir: str
    layout: str                   # of the result files; "vot": the supervised experiment
    regions: Tuple[Tuple[float, ...], ...] = ()      # VOT: the ground truth of every frame
    boxes: Tuple[Tuple[float, ...], ...] = ()        # VOT: the boxes a tracker starts from


_WORKER_TRACKERS: Dict[TrackerFactory, object] = {}


def run_job(job: Job) -> str:
    """Track one sequence and store its result (trackers are cached per process)."""
    tracker = _WORKER_TRACKERS.get(job.factory)
    if tracker is None:
        tracker = _WORKER_TRACKERS[job.factory] = job.factory()
    try:
        if job.layout == "vot":
            records, times = run_supervised(tracker, job.frames, np.asarray(job.regions),
                                            np.asarray(job.boxes))
        else:
            boxes, times = track_sequence(tracker, job.frames, np.asarray(job.first_box))
    except ValueError as exc:
        raise EvalError(f"{job.tracker} on sequence {job.seq}: {exc}") from exc
    if job.layout == "vot":
        write_vot_result(Path(job.result_dir), job.tracker, job.seq, records, times)
    else:
        write_result(Path(job.result_dir), job.tracker, job.seq, boxes, times, job.layout)
    return job.seq


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    fork_safe_opencv()


def process_pool(workers: int, spawn: bool = False) -> ProcessPoolExecutor:
    """A pool of ``workers`` tracking processes that share the cores (torch threads each:
    cores // workers; OpenCV without its thread pool), started fresh with "spawn" when
    ``spawn`` is set (trackers on a GPU: CUDA does not survive a fork)."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn") if spawn else None
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                               initargs=(threads,), mp_context=context)


def run_jobs(jobs: List[Job], workers: int = 1,
             progress: Optional[Callable[[str], None]] = None, spawn: bool = False) -> None:
    """Run jobs in this process (``workers`` = 1) or in a ``process_pool`` of ``workers``."""
    if workers <= 1:
        for job in jobs:
            run_job(job)
            if progress:
                progress(job.seq)
        return
    with process_pool(workers, spawn) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in as_completed(futures):
            seq = future.result()
            if progress:
                progress(seq)


def _rows(array: np.ndarray) -> Tuple[Tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(array))


IDENTITY_FILE = "tracker.json"


def read_identity(result_dir: Path, tracker: str) -> Optional[dict]:
    """The identity recorded in ``<result_dir>/<tracker>/tracker.json``, None when there is
    none; ``EvalError`` when it is unreadable."""
    path = Path(result_dir) / tracker / IDENTITY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EvalError(f"{path} is unreadable ({exc}); delete it and the results beside it, "
                        f"or give another --result-dir") from exc


def check_identity(result_dir: Path, tracker: str, identity: dict) -> None:
    """Record ``identity`` in ``<result_dir>/<tracker>/tracker.json`` (the first run) or check
    that it is the one recorded; ``EvalError`` naming what differs when it is not."""
    path = Path(result_dir) / tracker / IDENTITY_FILE
    identity = json.loads(json.dumps(identity))
    recorded = read_identity(result_dir, tracker)
    if recorded is None:
        check_writable(path, "result file")
        with atomic_open(path) as handle:
            json.dump(identity, handle, indent=2)
    elif recorded != identity:
        differ = sorted(k for k in set(recorded) | set(identity)
                        if recorded.get(k) != identity.get(k))
        was = ", ".join(f"{k}: {recorded.get(k)}" for k in differ)
        raise EvalError(f"{path.parent} holds results of {tracker} with other "
                        f"{', '.join(differ)} ({was}); delete that folder to rerun, or give "
                        f"another --result-dir")


def make_jobs(trackers: Mapping[str, TrackerFactory], sequences, result_dir: Path,
              layout: str = "otb") -> List[Job]:
    """Jobs for every (tracker, sequence) pair without a finished result; ``trackers`` maps
    the name results are filed under to the tracker's factory; ``layout`` of the results
    (``"vot"``: the supervised experiment, sequences with ``regions``). ``OutputPathError``
    when a result file cannot be written."""
    jobs = []
    for name, factory in trackers.items():
        if hasattr(factory, "identity"):
            check_identity(result_dir, name, factory.identity())
        for seq in sequences:
            if is_finished(result_dir, name, seq.name, layout):
                continue
            for path in result_paths(result_dir, name, seq.name, layout):
                check_writable(path, "result file")
            vot = layout == "vot"
            jobs.append(Job(name, factory, seq.name, tuple(str(f) for f in seq.frames),
                            _rows(seq.boxes)[0], str(result_dir), layout,
                            _rows(seq.regions) if vot else (), _rows(seq.boxes) if vot else ()))
    return jobs
