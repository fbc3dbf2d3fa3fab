"""Tracking sequences read from GOT-10k, OTB and UAV123 folder layouts (the other benchmarks'
layouts: ``rbsf.data.layouts``), and where each dataset's root is by default."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Dict, List, Optional, Tuple

import numpy as np

from rbsf.errors import RBSFError

log = logging.getLogger("rbsf.data")

GOT10K_SUBSETS = ("train", "val", "test")
# OTB sequences whose annotation covers only part of img/ (0-based first frame, frame count)
OTB_FRAME_RANGES = {"david": (299, 471), "football1": (0, 74), "freeman3": (0, 460),
                    "freeman4": (0, 283), "diving": (0, 215)}

EXPECTED_LAYOUTS = (
    "expected one of: a GOT-10k root (ROOT/train|val|test/<sequence>/00000001.jpg + "
    "groundtruth.txt, "
    "list.txt optional), a GOT-10k subset folder (ROOT/<sequence>/00000001.jpg + groundtruth.txt), "
    "an OTB root (ROOT/<Sequence>/img/0001.jpg + groundtruth_rect.txt) or a UAV123 root "
    "(ROOT/anno/UAV123/<name>.txt + ROOT/data_seq/UAV123/<name>/000001.jpg)")


REPO_DATA = Path(__file__).resolve().parents[2] / "data"
VOT_VERSIONS = tuple(range(2013, 2019))
# dataset -> (environment variable overriding the root, default root)
DEFAULT_ROOTS = {"got10k": ("RBSF_GOT10K", REPO_DATA / "GOT-10k"),
                 "otb": ("RBSF_OTB", REPO_DATA / "OTB"),
                 "uav123": ("RBSF_UAV123", REPO_DATA / "UAV123"),
                 "lasot": ("RBSF_LASOT", REPO_DATA / "LaSOT"),
                 "trackingnet": ("RBSF_TRACKINGNET", REPO_DATA / "TrackingNet"),
                 "nfs": ("RBSF_NFS", REPO_DATA / "NfS"),
                 "tcolor128": ("RBSF_TCOLOR128", REPO_DATA / "TColor128"),
                 "dtb70": ("RBSF_DTB70", REPO_DATA / "DTB70"),
                 **{f"vot{year}": (f"RBSF_VOT{year}", REPO_DATA / f"VOT{year}")
                    for year in VOT_VERSIONS}}


def default_root(dataset: str) -> Path:
    """Root of ``dataset`` (a key of ``DEFAULT_ROOTS``: "got10k", "otb", "uav123", "lasot",
    "nfs", "vot2018", ...): its environment variable, else data/<name>."""
    key = dataset.lower().replace("-", "").replace("_", "")
    if key not in DEFAULT_ROOTS:
        raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DEFAULT_ROOTS)}")
    variable, default = DEFAULT_ROOTS[key]
    return Path(os.environ.get(variable) or default)


class DatasetError(RBSFError, ValueError):
    """A dataset root that does not hold a recognised layout, or a broken annotation."""


@dataclass
class Sequence:
    """One annotated sequence: frame paths, N x 4 boxes (x, y, w, h) and per-frame visibility."""

    name: str
    frames: List[str]
    boxes: np.ndarray
    visible: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.visible = np.asarray(self.visible, dtype=bool)
        if not len(self.frames) == len(self.boxes) == len(self.visible):
            raise DatasetError(f"sequence {self.name}: {len(self.frames)} frames but "
                               f"{len(self.boxes)} boxes and {len(self.visible)} visibility flags")


def data_fingerprint(sequences: List[Sequence]) -> Dict[str, object]:
    """What identifies a training set wherever it lies: the number of sequences and frames and
    a hash of the names, frame counts, boxes and visibility flags, in order."""
    digest = hashlib.sha256()
    for seq in sequences:
        digest.update(seq.name.encode() + b"\0" + len(seq.frames).to_bytes(8, "little"))
        digest.update(np.ascontiguousarray(seq.boxes, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(seq.visible, dtype=np.uint8).tobytes())
    return {"sequences": len(sequences), "frames": sum(len(s.frames) for s in sequences),
            "sha256": digest.hexdigest()[:16]}


def read_boxes(path: Path, columns: Tuple[int, ...] = (4,)) -> np.ndarray:
    """Rows of numbers from a text file with comma, tab or space separators (NaN allowed): boxes
    x, y, w, h, or with ``columns`` (4, 8) also VOT's polygons x1, y1, ..., x4, y4."""
    text = path.read_text().replace(",", " ").replace("\t", " ")
    try:
        boxes = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise DatasetError(f"cannot parse boxes in {path}: {err}") from None
    width = boxes.shape[1] if boxes.size else columns[0]
    if width not in columns:
        expected = " or ".join(f"{c} numbers" for c in columns)
        what = "x, y, w, h" if columns == (4,) else "a box x, y, w, h or polygon x1, y1, ..., y4"
        raise DatasetError(f"{path}: expected {expected} ({what}) per line, got {width}")
    return boxes.reshape(-1, width)


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """Rows that are finite with a positive width and height."""
    return np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def _read_label(path: Path, count: int) -> Optional[np.ndarray]:
    if not path.is_file():
        return None
    values = np.loadtxt(path, dtype=np.float64, ndmin=1).reshape(-1)
    if len(values) != count:
        raise DatasetError(f"{path}: {len(values)} lines for {count} frames")
    return values


def _is_got10k_sequence(folder: Path) -> bool:
    return (folder / "groundtruth.txt").is_file() and any(folder.glob("*.jpg"))


def _got10k_sequence(folder: Path) -> Sequence:
    frames = sorted(str(p) for p in folder.glob("*.jpg"))
    boxes = read_boxes(folder / "groundtruth.txt")
    if len(boxes) == 1 and len(frames) > 1:     # test subset: only the first box is public
        boxes = np.vstack([boxes, np.full((len(frames) - 1, 4), np.nan)])
    if len(boxes) < len(frames):
        raise DatasetError(f"GOT-10k sequence {folder.name}: groundtruth.txt has {len(boxes)} "
                           f"boxes for {len(frames)} frames (one x,y,w,h line per frame, or only "
                           f"the first for test sequences); fix or re-copy {folder}")
    if len(boxes) > len(frames):
        # missing frames: keep GOT-10k's numbering; the pair sampler skips what it cannot read
        log.warning("GOT-10k sequence %s: %d frames for %d boxes; frames named by number",
                    folder.name, len(frames), len(boxes))
        frames = [str(folder / f"{i:08d}.jpg") for i in range(1, len(boxes) + 1)]
    visible = valid_boxes(boxes)
    absence = _read_label(folder / "absence.label", len(frames))
    if absence is not None:
        visible &= absence == 0
    cover = _read_label(folder / "cover.label", len(frames))
    if cover is not None:
        visible &= cover > 0
    return Sequence(folder.name, frames, boxes, visible)


def _shown(names: List[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def _load_got10k_subset(folder: Path, wanted: Callable[[str], bool]) -> List[Sequence]:
    """Every listed (or, without list.txt, every) sequence; ``DatasetError`` when one is missing,
    has no frames or no ground truth: a data set with holes is not silently trained on."""
    list_file = folder / "list.txt"
    if list_file.is_file():
        names = [n.strip() for n in list_file.read_text().split("\n") if n.strip()]
        broken = [n for n in names if wanted(n) and not _is_got10k_sequence(folder / n)]
        if broken:
            listed = sum(1 for n in names if wanted(n))
            raise DatasetError(f"{len(broken)} of {listed} sequences listed in {list_file} are "
                               f"missing or have no frames or no groundtruth.txt: "
                               f"{_shown(broken)}; the data set is incomplete, copy them again "
                               f"(or regenerate it)")
    else:   # the GOT-10k train download comes without list.txt
        folders = sorted(p for p in folder.iterdir() if p.is_dir() and wanted(p.name))
        unannotated = [p.name for p in folders
                       if any(p.glob("*.jpg")) and not (p / "groundtruth.txt").is_file()]
        if unannotated:
            raise DatasetError(f"GOT-10k sequence(s) {_shown(unannotated)} under {folder}: "
                               f"{unannotated[0]} has frames but no groundtruth.txt; copy its "
                               f"ground truth or move the folder out of {folder}")
        names = [p.name for p in folders if _is_got10k_sequence(p)]
    return [_got10k_sequence(folder / name) for name in filter(wanted, names)]


def _load_otb(root: Path, wanted: Callable[[str], bool]) -> List[Sequence]:
    """Every OTB sequence folder (``img/``); ``DatasetError`` when one has no ground truth or
    when its frames and boxes disagree in number (no silent cut, no silent drop)."""
    sequences = []
    for seq_dir in sorted(p for p in root.iterdir() if wanted(p.name) and (p / "img").is_dir()):
        frames = sorted(str(p) for p in (seq_dir / "img").glob("*.jpg"))
        anno_files = sorted(seq_dir.glob("groundtruth_rect*.txt"))
        if not anno_files:
            raise DatasetError(f"OTB sequence {seq_dir.name} has img/ but no groundtruth_rect.txt "
                               f"(x,y,w,h per frame); add its ground truth or move {seq_dir} out "
                               f"of {root}")
        for k, anno in enumerate(anno_files, start=1):
            boxes = read_boxes(anno)
            if not len(boxes):
                continue
            name = seq_dir.name if len(anno_files) == 1 else f"{seq_dir.name}.{k}"
            known = OTB_FRAME_RANGES.get(seq_dir.name.lower())
            start, count = known or (0, len(frames))
            seq_frames = frames[start:start + count]
            if len(seq_frames) != len(boxes):
                where = (f"frames {start + 1}-{start + count} of the {len(frames)} frames in img/"
                         if known else f"{len(frames)} frames in img/")
                raise DatasetError(f"OTB sequence {name}: {where} but {len(boxes)} boxes in "
                                   f"{anno.name} (one box per frame); fix or re-copy {seq_dir}")
            sequences.append(Sequence(name, seq_frames, boxes, valid_boxes(boxes)))
    return sequences


def _uav123_ranges() -> dict:
    """Frame ranges of the official UAV123 / UAV20L sequences, as the got10k toolkit ships them."""
    try:
        import got10k.datasets
    except ImportError:
        return {}
    return json.loads((Path(got10k.datasets.__file__).parent / "uav123.json").read_text())


def _load_uav123(root: Path, version: str, wanted: Callable[[str], bool]) -> List[Sequence]:
    anno_dir = root / "anno" / version
    if not anno_dir.is_dir():
        raise DatasetError(f"{root} has no anno/{version} folder; {EXPECTED_LAYOUTS}")
    metas = _uav123_ranges().get(version, {})
    sequences = []
    for anno in sorted(a for a in anno_dir.glob("*.txt") if wanted(a.stem)):
        name = anno.stem
        boxes = read_boxes(anno)
        meta = metas.get(name, {"folder_name": name, "start_frame": 1, "end_frame": None})
        folder = root / "data_seq" / "UAV123" / meta["folder_name"]
        start = meta["start_frame"]
        end = meta["end_frame"] or start + len(boxes) - 1
        frames = [str(folder / f"{i:06d}.jpg") for i in range(start, end + 1)]
        found = sum(1 for f in frames if Path(f).is_file())
        if len(frames) != len(boxes) or found != len(frames):
            raise DatasetError(f"UAV123 sequence {name}: {found} frames {folder}/{start:06d}.jpg"
                               f"...{end:06d}.jpg but {len(boxes)} boxes in {anno.name}; fix or "
                               f"re-copy it")
        sequences.append(Sequence(name, frames, boxes, valid_boxes(boxes)))
    return sequences


def load_sequences(root: str, subset: Optional[str] = None,
                   names: Optional[Collection[str]] = None) -> List[Sequence]:
    """All annotated sequences under ``root``, whose layout is detected; with ``names``, only
    those (folder names: an OTB folder's targets ``Jogging.1``, ``Jogging.2`` come with
    ``Jogging``), and no other sequence is read.

    GOT-10k root: ``subset`` picks train (default), val or test. UAV123 root: ``subset`` picks the
    version, UAV123 (default) or UAV20L. Raises ``DatasetError`` naming the expected layouts when
    ``root`` matches none or holds no sequence.
    """
    wanted = (lambda name: True) if names is None else set(names).__contains__
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"dataset root {path} does not exist; {EXPECTED_LAYOUTS}")
    if any((path / s).is_dir() for s in GOT10K_SUBSETS):
        subset = subset or "train"
        if subset not in GOT10K_SUBSETS:
            raise DatasetError(f"unknown GOT-10k subset {subset!r}: choose train, val or test")
        if not (path / subset).is_dir():
            raise DatasetError(f"GOT-10k root {path} has no {subset}/ folder")
        sequences = _load_got10k_subset(path / subset, wanted)
    elif (path / "anno").is_dir() and (path / "data_seq").is_dir():
        sequences = _load_uav123(path, (subset or "UAV123").upper(), wanted)
    elif (path / "list.txt").is_file() or any(_is_got10k_sequence(p) for p in path.iterdir()
                                              if p.is_dir()):
        sequences = _load_got10k_subset(path, wanted)
    elif any((p / "img").is_dir() for p in path.iterdir()):
        sequences = _load_otb(path, wanted)
    else:
        raise DatasetError(f"{path} is not a dataset root; {EXPECTED_LAYOUTS}")
    if not sequences and names is None:
        raise DatasetError(f"no readable sequence under {path}; {EXPECTED_LAYOUTS}")
    return sequences
