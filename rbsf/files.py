"""Files the jobs write: atomic writes, and the checks made before any work starts.

Atomic: a reader never sees a half-written file, an interrupted write leaves the previous file
(or none) in place, and the new file gets the mode an ordinary ``open`` would give it (0666
less the umask).

Checks: an output path must not be one of the job's inputs (no tool overwrites what it reads),
two outputs of one job must differ, and every output must be creatable, which is checked
before the long work starts instead of failing after it.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Union

from rbsf.errors import RBSFError

PathLike = Union[str, os.PathLike]


class OutputPathError(RBSFError):
    """An output path that clashes with an input or another output, or cannot be written."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block ends normally it is
    flushed to disk and renamed over ``path``, when it raises it is deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_atomic(obj: Any, path: PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    import torch

    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def same_path(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file (existing or not; links and ``..`` resolved)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_writable(path: PathLike, label: str) -> None:
    """``OutputPathError`` unless the file ``path`` can be created or replaced: no folder in
    its place, and its nearest existing parent a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{label} {path} is a folder; give a file path")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{label} {path}: {parent} is a file, not a folder; "
                              f"choose another location")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{label} {path} cannot be written: no write permission in "
                              f"{parent}; choose another location")


def check_writable_dir(path: PathLike, label: str) -> None:
    """``OutputPathError`` unless the folder ``path`` exists writable or can be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{label} {path} is a file, not a folder; choose another location")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputPathError(f"{label} {path} cannot be written: no write permission; "
                                  f"choose another location")
        return
    check_writable(path, label)


def check_outputs(outputs: Mapping[str, PathLike], inputs: Mapping[str, PathLike]) -> None:
    """Refuse, before any work, outputs that are inputs, outputs that clash with each other
    and outputs that cannot be written. Keys are what the user calls them (``--output``)."""
    for out_label, out_path in outputs.items():
        for in_label, in_path in inputs.items():
            if in_path is not None and same_path(out_path, in_path):
                raise OutputPathError(f"{out_label} {out_path} is the {in_label}; writing it "
                                      f"would destroy the input, choose another path")
    items = list(outputs.items())
    for i, (label_a, path_a) in enumerate(items):
        for label_b, path_b in items[i + 1:]:
            if same_path(path_a, path_b):
                raise OutputPathError(f"{label_a} and {label_b} are both {path_a}; give them "
                                      f"different paths")
    for label, path in items:
        check_writable(path, label)
