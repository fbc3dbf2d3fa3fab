"""The folder layouts of LaSOT, TrackingNet, NfS, TColor128, DTB70 and VOT, read as the got10k
toolkit (0.1.3) reads them, without ever downloading.

Each ``Layout`` says whether a folder is a root of its kind, which sequences the root (or, for
LaSOT, the toolkit's split) lists, whether one of them is complete on disk, and reads the
complete ones. The toolkit's conventions, kept exactly so that its ``report()`` scores the same
frames against the same boxes:

* LaSOT ``<category>/<category>-<n>/img/%08d.jpg`` with ``groundtruth.txt`` (x,y,w,h),
  ``full_occlusion.txt`` and ``out_of_view.txt`` (one comma-separated line of 0/1 flags); the
  frames are the first ``len(groundtruth)`` (monkey-17 has more images than boxes); a frame is
  visible unless either flag is set. The test split is ``got10k/datasets/lasot.json``'s (the
  toolkit's ``LaSOT`` class itself cannot be built: its integrity check takes one argument and is
  called with two). pysot's flat copy ``<category>-<n>/...`` straight under the root reads too.
* TrackingNet ``TEST/anno/<seq>.txt`` (the first box only) and ``TEST/frames/<seq>/0.jpg`` ...
  in numeric order (the toolkit's loader looks in ``TEST/<seq>`` and sorts by the whole path, so
  it cannot read the real layout; pytracking's reader is followed).
* NfS ``<seq>/<fps>/<seq>.txt`` and ``<seq>/<fps>/<seq>/%05d.jpg``; an annotation line is
  ``track_id xmin ymin xmax ymax frame lost occluded generated "label"``, the box is
  (xmin, ymin, xmax - xmin, ymax - ymin); an annotation about 8 times longer than the frames (the
  240 fps one in a 30 fps folder) is subsampled ``[0::8]``, and a length difference of one is cut.
* TColor128 ``<seq>/img/%04d.jpg``, ``<seq>/<seq>_gt.txt`` and ``<seq>/<seq>_frames.txt`` (first,
  last frame number).
* DTB70 ``<seq>/img/*.jpg`` and ``<seq>/groundtruth_rect.txt``.
* VOT ``list.txt`` and ``<seq>/%08d.jpg`` with ``groundtruth.txt`` (polygons x1,y1,...,x4,y4, or
  x,y,w,h in VOT2013) and per-frame tags ``*.tag`` / ``*.label``; a polygon's box is the toolkit's
  ``_corner2rect`` (same centre and area).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional
from typing import Sequence as Seq

import numpy as np

from rbsf.data.sequences import DatasetError, Sequence, read_boxes, valid_boxes


@dataclass
class VOTSequence(Sequence):
    """A VOT sequence: ``boxes`` are the boxes trackers start from, ``regions`` the ground truth
    as annotated (N x 8 polygons or N x 4 boxes) and ``tags`` the per-frame attribute flags."""

    regions: Optional[np.ndarray] = None
    tags: Dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """How one benchmark lies on disk."""

    name: str
    shape: str                                  # the layout in words, for messages
    is_root: Callable[[Path], bool]
    listed: Callable[[Path], List[str]]         # the sequences the benchmark has (see ``size``)
    present: Callable[[Path, str], bool]        # complete on disk
    load: Callable[[Path, Seq[str]], List[Sequence]]
    size: Optional[int] = None   # the full benchmark's count where ``listed`` only finds folders


def _dirs(root: Path) -> List[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _jpgs(folder: Path) -> List[Path]:
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def _require(path: Path, what: str, seq: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"sequence {seq} has no {path.name} ({what}) at {path}; re-copy it")
    return path


def _numbered_frames(folder: Path, pattern: str, numbers: range, seq: str) -> List[str]:
    frames = [folder / (pattern % i) for i in numbers]
    lost = [f for f in frames if not f.is_file()]
    if lost:
        raise DatasetError(f"sequence {seq}: {len(lost)} of its {len(frames)} annotated frames "
                           f"are missing (first: {lost[0]}); re-copy it")
    return [str(f) for f in frames]


def _same_length(seq: str, frames: List, boxes: np.ndarray, where: Path) -> None:
    if len(frames) != len(boxes):
        raise DatasetError(f"sequence {seq}: {len(frames)} frames but {len(boxes)} boxes in "
                           f"{where.name} (one box per frame); fix or re-copy {where.parent}")


def _sequence(name: str, frames: List, boxes: np.ndarray, anno: Path) -> Sequence:
    """A sequence whose frames and boxes must agree in number; visible where the box is valid."""
    _same_length(name, frames, boxes, anno)
    return Sequence(name, [str(f) for f in frames], boxes, valid_boxes(boxes))


def _flags(path: Path, count: int, seq: str) -> np.ndarray:
    """0/1 flags, comma- or line-separated, cut to ``count`` frames."""
    text = _require(path, "per-frame 0/1 flags", seq).read_text().replace(",", " ")
    try:
        values = np.array(text.split(), dtype=np.float64)
    except ValueError as err:
        raise DatasetError(f"cannot parse {path}: {err}") from None
    if len(values) < count:
        raise DatasetError(f"{path}: {len(values)} flags for {count} frames; re-copy it")
    return values[:count] != 0


# LaSOT --------------------------------------------------------------------------------------

def lasot_split(subset: str = "test") -> List[str]:
    """The toolkit's LaSOT split (``train`` 1120 or ``test`` 280 sequence names)."""
    import got10k.datasets
    split_file = Path(got10k.datasets.__file__).parent / "lasot.json"
    return list(json.loads(split_file.read_text())[subset])


def _lasot_folder(root: Path, name: str) -> Path:
    nested = root / name[:name.rfind("-")] / name
    return nested if nested.is_dir() else root / name


def _lasot_is_root(root: Path) -> bool:
    return any(root.glob("*/*/groundtruth.txt")) or any(root.glob("*-*/groundtruth.txt"))


def _lasot_present(root: Path, name: str) -> bool:
    folder = _lasot_folder(root, name)
    return (folder / "groundtruth.txt").is_file() and (folder / "img").is_dir()


def load_lasot(root: Path, names: Seq[str]) -> List[Sequence]:
    """LaSOT sequences; visible = neither fully occluded nor out of view, and a valid box."""
    sequences = []
    for name in names:
        folder = _lasot_folder(root, name)
        boxes = read_boxes(folder / "groundtruth.txt")
        frames = _numbered_frames(folder / "img", "%08d.jpg", range(1, len(boxes) + 1), name)
        absent = (_flags(folder / "full_occlusion.txt", len(boxes), name)
                  | _flags(folder / "out_of_view.txt", len(boxes), name))
        sequences.append(Sequence(name, frames, boxes, valid_boxes(boxes) & ~absent))
    return sequences


LASOT = Layout("LaSOT", "ROOT/<category>/<category>-<n>/img/00000001.jpg + groundtruth.txt, "
               "full_occlusion.txt, out_of_view.txt", _lasot_is_root, lambda root: lasot_split(),
               _lasot_present, load_lasot)


# TrackingNet ---------------------------------------------------------------------------------

def _trackingnet_frames(folder: Path) -> List[Path]:
    frames = [p for p in _jpgs(folder) if p.stem.isdigit()]
    return sorted(frames, key=lambda p: int(p.stem))


def load_trackingnet(root: Path, names: Seq[str]) -> List[Sequence]:
    """TrackingNet test sequences: the first box is given, the others are NaN (not public)."""
    sequences = []
    for name in names:
        frames = _trackingnet_frames(root / "TEST" / "frames" / name)
        if [int(p.stem) for p in frames] != list(range(len(frames))):
            raise DatasetError(f"TrackingNet sequence {name}: frames are not 0.jpg ... "
                               f"{len(frames) - 1}.jpg without gaps; re-copy it")
        anno = root / "TEST" / "anno" / f"{name}.txt"
        boxes = read_boxes(anno)
        if len(boxes) == 1:
            boxes = np.vstack([boxes, np.full((len(frames) - 1, 4), np.nan)])
        sequences.append(_sequence(name, frames, boxes, anno))
    return sequences


TRACKINGNET = Layout(
    "TrackingNet", "ROOT/TEST/anno/<seq>.txt + ROOT/TEST/frames/<seq>/0.jpg ...",
    lambda root: (root / "TEST" / "anno").is_dir() and (root / "TEST" / "frames").is_dir(),
    lambda root: sorted(p.stem for p in (root / "TEST" / "anno").glob("*.txt")),
    lambda root, name: bool(_jpgs(root / "TEST" / "frames" / name)),
    load_trackingnet, size=511)


# NfS -----------------------------------------------------------------------------------------

def _nfs_boxes(path: Path) -> np.ndarray:
    """Boxes (x, y, w, h) from an NfS annotation (columns 2-5 are xmin ymin xmax ymax)."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            box = [float(v) for v in fields[1:5]]
        except ValueError:
            box = []
        if len(box) != 4:
            raise DatasetError(f"{path}, line {number}: expected 'track_id xmin ymin xmax ymax "
                               f"...', got {line.strip()!r}")
        rows.append(box)
    boxes = np.array(rows, dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] -= boxes[:, :2]
    return boxes


def load_nfs(root: Path, names: Seq[str], fps: int) -> List[Sequence]:
    """NfS sequences at ``fps`` (30 or 240), frames and boxes matched as the toolkit does."""
    sequences = []
    for name in names:
        anno = root / name / str(fps) / f"{name}.txt"
        frames = [str(p) for p in _jpgs(root / name / str(fps) / name)]
        boxes = _nfs_boxes(anno)
        if frames and len(boxes) != len(frames):
            if abs(len(boxes) / len(frames) - 8) < 1:
                boxes = boxes[0::8]
            if abs(len(frames) - len(boxes)) == 1:
                count = min(len(frames), len(boxes))
                frames, boxes = frames[:count], boxes[:count]
        sequences.append(_sequence(name, frames, boxes, anno))
    return sequences


def nfs(fps: int) -> Layout:
    """The NfS layout at 30 or 240 fps."""
    return Layout(
        f"NfS ({fps} fps)", f"ROOT/<seq>/{fps}/<seq>.txt + ROOT/<seq>/{fps}/<seq>/00001.jpg ...",
        lambda root: any(p.is_dir() for p in root.glob(f"*/{fps}")),
        lambda root: [p.name for p in _dirs(root) if (p / "30").is_dir() or (p / "240").is_dir()],
        lambda root, name: ((root / name / str(fps) / f"{name}.txt").is_file()
                            and (root / name / str(fps) / name).is_dir()),
        lambda root, names: load_nfs(root, names, fps), size=100)


# TColor128 -----------------------------------------------------------------------------------

def _first(folder: Path, pattern: str) -> Optional[Path]:
    found = sorted(folder.glob(pattern))
    return found[0] if found else None


def load_tcolor128(root: Path, names: Seq[str]) -> List[Sequence]:
    """TColor128 sequences: frames img/%04d.jpg from the first to the last of <seq>_frames.txt."""
    sequences = []
    for name in names:
        folder = root / name
        anno, frame_range = _first(folder, "*_gt.txt"), _first(folder, "*_frames.txt")
        try:
            first, last = (int(v) for v in frame_range.read_text().replace(",", " ").split()[:2])
        except ValueError:
            raise DatasetError(f"{frame_range}: expected 'first,last' frame numbers") from None
        boxes = read_boxes(anno)
        frames = _numbered_frames(folder / "img", "%04d.jpg", range(first, last + 1), name)
        sequences.append(_sequence(name, frames, boxes, anno))
    return sequences


TCOLOR128 = Layout(
    "TColor128", "ROOT/<seq>/img/0001.jpg + ROOT/<seq>/<seq>_gt.txt + ROOT/<seq>/<seq>_frames.txt",
    lambda root: any(root.glob("*/*_gt.txt")),
    lambda root: [p.name for p in _dirs(root) if (p / "img").is_dir() or any(p.glob("*_gt.txt"))],
    lambda root, name: ((root / name / "img").is_dir() and _first(root / name, "*_gt.txt")
                        is not None and _first(root / name, "*_frames.txt") is not None),
    load_tcolor128, size=128)


# DTB70 ---------------------------------------------------------------------------------------

def load_dtb70(root: Path, names: Seq[str]) -> List[Sequence]:
    """DTB70 sequences: every frame of img/, one groundtruth_rect.txt box per frame."""
    sequences = []
    for name in names:
        anno = root / name / "groundtruth_rect.txt"
        frames = [str(p) for p in _jpgs(root / name / "img")]
        boxes = read_boxes(anno)
        sequences.append(_sequence(name, frames, boxes, anno))
    return sequences


DTB70 = Layout(
    "DTB70", "ROOT/<seq>/img/00001.jpg + ROOT/<seq>/groundtruth_rect.txt",
    lambda root: any(root.glob("*/groundtruth_rect.txt")),
    lambda root: [p.name for p in _dirs(root)
                  if (p / "img").is_dir() or (p / "groundtruth_rect.txt").is_file()],
    lambda root, name: ((root / name / "img").is_dir()
                        and (root / name / "groundtruth_rect.txt").is_file()),
    load_dtb70, size=70)


# VOT -----------------------------------------------------------------------------------------

def corner_to_rect(corners: np.ndarray) -> np.ndarray:
    """Boxes (x, y, w, h) of N x 8 polygons: the corners' centre, the polygon's area, the aspect
    of the corners' bounding box (the toolkit's ``VOT._corner2rect``)."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 8)
    xs, ys = corners[:, 0::2], corners[:, 1::2]
    cx, cy = xs.mean(axis=1), ys.mean(axis=1)
    x1, x2, y1, y2 = xs.min(axis=1), xs.max(axis=1), ys.min(axis=1), ys.max(axis=1)
    area = (np.linalg.norm(corners[:, 0:2] - corners[:, 2:4], axis=1)
            * np.linalg.norm(corners[:, 2:4] - corners[:, 4:6], axis=1))
    scale = np.sqrt(area / ((x2 - x1) * (y2 - y1)))
    w, h = scale * (x2 - x1) + 1, scale * (y2 - y1) + 1
    return np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)


def _vot_names(root: Path) -> List[str]:
    return [n.strip() for n in (root / "list.txt").read_text().splitlines() if n.strip()]


def _vot_tags(folder: Path, count: int) -> Dict[str, np.ndarray]:
    """Per-frame tags of ``*.label`` and ``*.tag`` files, zero-padded to ``count`` frames."""
    tags = {}
    for path in sorted(folder.glob("*.label")) + sorted(folder.glob("*.tag")):
        values = np.loadtxt(path, dtype=np.float64, ndmin=1).reshape(-1) \
            if path.read_text().strip() else np.zeros(0)
        if len(values) > count:
            raise DatasetError(f"{path}: {len(values)} flags for {count} frames; re-copy it")
        tags[path.name[:path.name.rfind(".")]] = np.pad(values, (0, count - len(values)))
    return tags


def load_vot(root: Path, names: Seq[str]) -> List[VOTSequence]:
    """VOT sequences with their polygons, start boxes and tags."""
    sequences = []
    for name in names:
        folder = root / name
        frames = [str(p) for p in _jpgs(folder)]
        anno = folder / "groundtruth.txt"
        regions = read_boxes(anno, columns=(4, 8))
        _same_length(name, frames, regions, anno)
        boxes = corner_to_rect(regions) if regions.shape[1] == 8 else regions.copy()
        sequences.append(VOTSequence(name, frames, boxes, valid_boxes(boxes), regions=regions,
                                     tags=_vot_tags(folder, len(frames))))
    return sequences


VOT = Layout(
    "VOT", "ROOT/list.txt + ROOT/<seq>/00000001.jpg + ROOT/<seq>/groundtruth.txt",
    lambda root: (root / "list.txt").is_file(), _vot_names,
    lambda root, name: (root / name / "groundtruth.txt").is_file() and bool(_jpgs(root / name)),
    load_vot)

LAYOUTS = {"lasot": LASOT, "trackingnet": TRACKINGNET, "nfs30": nfs(30), "nfs240": nfs(240),
           "tcolor128": TCOLOR128, "dtb70": DTB70, "vot": VOT}

