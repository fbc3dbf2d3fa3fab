"""Files the jobs write: atomic writes, and the checks made before any work starts.

Atomic: a reader never sees a half-written file, an interrupted write leaves the previous file
(or none) in place, and the new file gets the mode an ordinary ``open`` would give it (0666
less the umask).

Atomic folders (``atomic_dir``): a data set or any other folder a job fills is built in a
hidden sibling and renamed into place at the end, so the folder is complete or absent.

Checks: an output path must not be one of the job's inputs (no tool overwrites what it reads),
two outputs of one job must differ, and every output must be creatable, which is checked
before the long work starts instead of failing after it.
"""
from __future__ import annotations

import os
import shutil
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


def write_record(out: PathLike, stem: str, record: Mapping[str, Any], table: str) -> None:
    """``OUT/<stem>.json`` (the record) and ``OUT/<stem>.md`` (its table), each atomically."""
    import json

    Path(out).mkdir(parents=True, exist_ok=True)
    with atomic_open(Path(out) / f"{stem}.json") as handle:
        json.dump(record, handle, indent=2)
    with atomic_open(Path(out) / f"{stem}.md") as handle:
        handle.write(table)


PARTIAL_MARK = ".rbsf-partial"


def partial_dir(path: PathLike) -> Path:
    """The hidden sibling ``.<name>.partial`` in which ``atomic_dir`` builds ``path``."""
    path = Path(os.path.abspath(path))
    return path.with_name(f".{path.name}.partial")


@contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Build the folder ``path`` (absent or empty) in ``partial_dir(path)``: the block gets that
    folder, which is renamed to ``path`` when the block ends normally and deleted when it raises
    (Ctrl-C included). A partial folder left by a killed job (it holds ``PARTIAL_MARK``) is
    deleted first; any other folder on that name is refused, never deleted."""
    path = Path(path)
    check_new_dir(path, "output folder")
    if path.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"output folder {path} cannot be written: it is built beside it, "
                              f"and {path.parent} has no write permission; choose another "
                              f"location")
    building = partial_dir(path)
    if building.exists():
        if not (building / PARTIAL_MARK).is_file():
            raise OutputPathError(f"{building} is in the way of writing {path} and was not left "
                                  f"by an interrupted job; remove it or choose another folder")
        shutil.rmtree(building)
    building.mkdir(parents=True)
    (building / PARTIAL_MARK).write_text("left by an interrupted job; safe to delete\n")
    try:
        yield building
        (building / PARTIAL_MARK).unlink()
        os.replace(building, path)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


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


def check_new_dir(path: PathLike, label: str) -> None:
    """``OutputPathError`` unless the folder ``path`` is absent or empty, and writable."""
    check_writable_dir(path, label)
    if Path(path).is_dir() and any(Path(path).iterdir()):
        raise OutputPathError(f"{label} {path} is not empty: choose a new or empty folder")


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
