"""Load the chosen sequences of a benchmark with the data package's layout readers."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

from rbsf.data import DatasetError, load_sequences
from rbsf.data.layouts import LAYOUTS
from rbsf.eval.datasets import Benchmark
from rbsf.eval.runner import EvalError


def _base_name(name: str) -> str:
    """OTB's multi-target sequences (``Jogging.1``, ``Jogging.2``) share one folder, ``Jogging``."""
    return name.split(".")[0]


def _load_detected(benchmark: Benchmark, root: Path, subset: Optional[str],
                   names: Sequence[str]) -> List:
    """GOT-10k, OTB and UAV123 roots, through ``load_sequences``'s layout detection."""
    loaded = load_sequences(str(root), subset if benchmark.layout == "got10k" else None,
                            {_base_name(n) for n in names})
    by_folder = {}
    for seq in loaded:
        by_folder.setdefault(_base_name(seq.name), []).append(seq)
    unreadable = [n for n in names if n not in by_folder]
    if unreadable:
        raise EvalError(f"{benchmark.name} sequence(s) {', '.join(unreadable)} under {root} could "
                        f"not be read (frame count does not match the annotation, or no frames); "
                        f"fix or re-copy them, or leave them out with --sequences")
    return [seq for n in names for seq in by_folder[n]]


def load_benchmark(benchmark: Benchmark, root: Path, subset: Optional[str],
                   names: Sequence[str]) -> List:
    """Sequences (name, frames, boxes, visible; VOT's with regions and tags) of ``names``, in
    the given order."""
    try:
        layout = LAYOUTS.get(benchmark.layout)
        sequences = (layout.load(root, names) if layout is not None
                     else _load_detected(benchmark, root, subset, names))
    except DatasetError as exc:
        raise EvalError(str(exc)) from exc
    for seq in sequences:
        if len(seq.frames) < 2:
            raise EvalError(f"sequence {seq.name} has {len(seq.frames)} frame(s); at least 2 "
                            f"needed")
    return sequences
