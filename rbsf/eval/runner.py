"""Run trackers over benchmark sequences and store results in the got10k toolkit's layout.

Layouts (``result_dir`` is the dataset's own folder, e.g. ``results/OTB100``):

* OTB / UAV123 / custom: ``<tracker>/<seq>.txt`` and ``<tracker>/times/<seq>_time.txt``
  (where ``ExperimentOTB.report`` reads them);
* GOT-10k: ``<tracker>/<seq>/<seq>_001.txt`` and ``<tracker>/<seq>/<seq>_time.txt``.

Every file is written to a temporary name and renamed, times first, so a box file exists only
for a finished sequence; a rerun skips those. Sequences run in a pool of processes, each of which
loads its own tracker once through ``load_tracker`` (the one place that maps a tracker
spec to a tracker object).
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from rbsf.files import atomic_open
from trackers.siamfc import SiamFCTracker


class EvalError(RuntimeError):
    """A benchmark cannot be run or scored; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class TrackerSpec:
    """What a worker needs to build a tracker: its report name, its weights and its device."""

    name: str
    weights: str
    kind: str = "torch"
    device: str = "cpu"
    conv1_mode: str = "fp32"  # packed models: exact fp32 or the fast 8-bit conv1


# command-line key: (report name, shipped file, training stage folder or None)
TRACKERS = {"siamfc": ("SiamFC", "siamfc.pt", "teacher"), "xnor": ("XNOR-SF", "xnor.pt", "xnor"),
            "rbsf": ("RB-SF", "rbsf.pt", "rbsf"), "packed": ("RB-SF packed", "rbsf.packed", None),
            "packed-int8": ("RB-SF packed int8", "rbsf.packed", None)}
CONV1_MODES = {"packed-int8": "int8"}  # packed trackers whose conv1 is not the exact fp32 one


def find_weights(weights_dir: Path, key: str) -> Path:
    """``DIR/<file>`` (shipped weights) or ``DIR/<stage>/last.pt`` (a training output folder);
    the packed model (``tools/export.py``) only as ``DIR/rbsf.packed``."""
    if key not in TRACKERS:
        raise EvalError(f"unknown tracker {key!r}; choose from {', '.join(TRACKERS)}")
    _, shipped, stage = TRACKERS[key]
    candidates = [Path(weights_dir) / shipped]
    if stage is not None:
        candidates.append(Path(weights_dir) / stage / "last.pt")
    for path in candidates:
        if path.is_file():
            return path
    raise EvalError(f"no weights for {key}: {' nor '.join(map(str, candidates))} exists; "
                    f"train it (tools/train_rbsf.py), export it (tools/export.py) "
                    f"or pass --weights-dir")


def tracker_specs(keys: Sequence[str], weights_dir: Path, kind: str = "torch",
                  device: str = "cpu") -> List[TrackerSpec]:
    """Specs of the trackers named on the command line (siamfc, xnor, rbsf, packed)."""
    specs = []
    for key in keys:
        weights = find_weights(weights_dir, key)
        specs.append(TrackerSpec(TRACKERS[key][0], str(weights), kind, device,
                                 CONV1_MODES.get(key, "fp32")))
    return specs


def load_tracker(spec: TrackerSpec):
    """Build the tracker of a spec (``kind`` selects the implementation; "torch" is SiamFC)."""
    if spec.kind == "torch":
        try:
            return SiamFCTracker.from_checkpoint(spec.weights, name=spec.name,
                                                 device=spec.device, conv1_mode=spec.conv1_mode)
        except ValueError as exc:
            raise EvalError(f"{spec.name}: {exc}") from exc
    raise EvalError(f"unknown tracker kind {spec.kind!r}; expected 'torch'")


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

    spec: TrackerSpec
    seq: str
    frames: Tuple[str, ...]
    first_box: Tuple[float, float, float, float]
    result_dir: str
    got10k: bool


_WORKER_TRACKERS: Dict[TrackerSpec, object] = {}


def run_job(job: Job) -> str:
    """Track one sequence and store its result (trackers are cached per process)."""
    tracker = _WORKER_TRACKERS.get(job.spec)
    if tracker is None:
        tracker = _WORKER_TRACKERS[job.spec] = load_tracker(job.spec)
    try:
        boxes, times = track_sequence(tracker, job.frames, np.asarray(job.first_box))
    except ValueError as exc:
        raise EvalError(f"{job.spec.name} on sequence {job.seq}: {exc}") from exc
    write_result(Path(job.result_dir), job.spec.name, job.seq, boxes, times, job.got10k)
    return job.seq


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_jobs(jobs: List[Job], workers: int = 1,
             progress: Optional[Callable[[str], None]] = None) -> None:
    """Run jobs in this process (``workers`` = 1) or in a pool of ``workers`` processes
    (started fresh with "spawn" when a tracker runs on a GPU: CUDA does not survive a fork)."""
    if workers <= 1:
        for job in jobs:
            run_job(job)
            if progress:
                progress(job.seq)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    on_gpu = any(job.spec.device != "cpu" for job in jobs)
    context = multiprocessing.get_context("spawn") if on_gpu else None
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(threads,),
                             mp_context=context) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in as_completed(futures):
            seq = future.result()
            if progress:
                progress(seq)


def make_jobs(specs: Sequence[TrackerSpec], sequences, result_dir: Path, got10k: bool) -> List[Job]:
    """Jobs for every (tracker, sequence) pair without a finished result."""
    jobs = []
    for spec in specs:
        for seq in sequences:
            if is_finished(result_dir, spec.name, seq.name, got10k):
                continue
            jobs.append(Job(spec, seq.name, tuple(str(f) for f in seq.frames),
                            tuple(float(v) for v in np.asarray(seq.boxes)[0]),
                            str(result_dir), got10k))
    return jobs
