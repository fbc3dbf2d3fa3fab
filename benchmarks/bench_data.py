"""Training-pair throughput of one data worker at 127/239 (goal: >= 200 pairs/s per worker).

Writes small synthetic GOT-10k sets (480x360 frames, and 1280x720 frames like most of real
GOT-10k) to a temporary folder, then times PairDataset item by item in this one process, with
and without reduced-size JPEG decoding, side by side.

    python benchmarks/bench_data.py [--pairs 400]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import torch

from rbsf.data import PairConfig, PairDataset, load_sequences
from rbsf.data.synthetic import write_dataset

GOAL = 200.0


def pairs_per_second(dataset: PairDataset, pairs: int) -> tuple:
    """(pairs per wall-clock second, pairs per CPU second of this process)."""
    dataset[0]                                   # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(pairs):
        dataset[i]
    return pairs / (time.perf_counter() - wall), pairs / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=400,
                        help="pairs timed per setting (default: 400)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)                          # one DataLoader worker = one core
    with tempfile.TemporaryDirectory() as tmp:
        print("pairs/s per worker; 'cpu' counts only this process's CPU time "
              "(fair on a shared machine)")
        print(f"{'frames':>10} {'decode':>8} {'wall':>8} {'cpu':>8} {'cpu vs goal':>12}")
        for size, sequences, frames in (((480, 360), 6, 40), ((1280, 720), 3, 15)):
            root = write_dataset(Path(tmp) / f"{size[0]}", "got10k", sequences, frames, seed=0,
                                 frame_size=size)
            seqs = load_sequences(str(root))
            rates = {}
            for reduced in (False, True):
                config = PairConfig(reduced_decode=reduced)
                wall, cpu = pairs_per_second(PairDataset(seqs, config, args.pairs + 1, seed=1),
                                             args.pairs)
                rates[reduced] = cpu
                print(f"{size[0]}x{size[1]:<4} {'reduced' if reduced else 'full':>8} {wall:8.1f} "
                      f"{cpu:8.1f} {cpu / GOAL:11.2f}x")
            print(f"{'':>10} reduced/full decode speed-up: {rates[True] / rates[False]:.2f}x")


if __name__ == "__main__":
    main()
