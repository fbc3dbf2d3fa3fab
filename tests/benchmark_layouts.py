"""Tiny benchmarks written exactly in the real layouts of LaSOT, TrackingNet, NfS, TColor128,
DTB70 and VOT (file names, numbering, annotation formats, absent-frame flags, tags), with frames
and boxes taken from synthetic OTB-layout sequences (``rbsf.data.synthetic``)."""
import math
import shutil
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from rbsf.data.sequences import read_boxes
from rbsf.data.synthetic import write_dataset

Source = List[Tuple[List[Path], np.ndarray]]   # per sequence: frame files, boxes (x, y, w, h)


def source(folder: Path, count: int, frames: int, seed: int, size=(64, 48)) -> Source:
    """Frames and ground truth of ``count`` synthetic sequences."""
    root = write_dataset(str(folder), "otb", count, frames, seed=seed, frame_size=size)
    return [(sorted((seq / "img").glob("*.jpg")), read_boxes(seq / "groundtruth_rect.txt"))
            for seq in sorted(p for p in Path(root).iterdir() if p.is_dir())]


def _copy_frames(files: Sequence[Path], folder: Path, pattern: str, first: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, file in enumerate(files, start=first):
        shutil.copyfile(file, folder / (pattern % index))


def _csv(boxes: np.ndarray, fmt: str = "%.0f") -> str:
    return "\n".join(",".join(fmt % v for v in row) for row in boxes) + "\n"


def write_lasot(root: Path, src: Source, names=("airplane-1", "basketball-1"),
                absent: Sequence[Tuple[int, int]] = ((0, 2), (1, 3))) -> Path:
    """``<category>/<category>-<n>/img/%08d.jpg``, groundtruth.txt, full_occlusion.txt,
    out_of_view.txt (one comma-separated line), nlp.txt; ``absent``: (sequence, frame) pairs,
    the first flagged fully occluded, the second out of view."""
    for index, (name, (files, boxes)) in enumerate(zip(names, src)):
        folder = root / name[:name.rfind("-")] / name
        _copy_frames(files, folder / "img", "%08d.jpg")
        (folder / "groundtruth.txt").write_text(_csv(boxes))
        for flag, (seq, frame) in zip(("full_occlusion", "out_of_view"), absent):
            values = ["1" if seq == index and f == frame else "0" for f in range(len(files))]
            (folder / f"{flag}.txt").write_text(",".join(values))
        (folder / "nlp.txt").write_text(f"the {name[:name.rfind('-')]} in the middle\n")
    return root


def write_trackingnet(root: Path, src: Source, names=("-3TIfnTSM6c_2", "a1qoB1eERn0_0")) -> Path:
    """``TEST/anno/<seq>.txt`` (the first box only) and ``TEST/frames/<seq>/0.jpg ...``."""
    for name, (files, boxes) in zip(names, src):
        _copy_frames(files, root / "TEST" / "frames" / name, "%d.jpg", first=0)
        (root / "TEST" / "anno").mkdir(parents=True, exist_ok=True)
        (root / "TEST" / "anno" / f"{name}.txt").write_text(_csv(boxes[:1], "%.1f"))
    return root


def _nfs_lines(boxes: np.ndarray, label: str) -> str:
    lines = [f"1 {x:.0f} {y:.0f} {x + w:.0f} {y + h:.0f} {i} 0 0 0 \"{label}\""
             for i, (x, y, w, h) in enumerate(boxes, start=1)]
    return "\n".join(lines) + "\n"


def write_nfs(root: Path, src: Source, names=("Gymnastics", "airboard_1")) -> Path:
    """``<seq>/240/<seq>.txt`` + ``<seq>/240/<seq>/%05d.jpg`` and the same at 30 fps, whose
    annotation is the 240 fps one (8 lines per frame, as in the real download); the first
    sequence's 240 fps annotation has one line too many (the toolkit cuts it)."""
    for index, (name, (files, boxes)) in enumerate(zip(names, src)):
        for fps in (30, 240):
            folder = root / name / str(fps)
            _copy_frames(files, folder / name, "%05d.jpg")
            anno = np.repeat(boxes, 8, axis=0) if fps == 30 else boxes
            if fps == 240 and index == 0:
                anno = np.vstack([anno, anno[-1:]])
            (folder / f"{name}.txt").write_text(_nfs_lines(anno, "person"))
    return root


def write_tcolor128(root: Path, src: Source, names=("Airport_ce", "Baby_ce"), first: int = 3
                    ) -> Path:
    """``<seq>/img/%04d.jpg``, ``<seq>/<seq>_gt.txt`` and ``<seq>/<seq>_frames.txt``; the
    annotated range starts at frame ``first``, frames before it lie in img/ too."""
    for name, (files, boxes) in zip(names, src):
        folder = root / name
        _copy_frames(files[:1] * (first - 1) + list(files), folder / "img", "%04d.jpg")
        (folder / f"{name}_gt.txt").write_text(_csv(boxes))
        (folder / f"{name}_frames.txt").write_text(f"{first},{first + len(files) - 1}\n")
    return root


def write_dtb70(root: Path, src: Source, names=("Animal1", "BMX2")) -> Path:
    """``<seq>/img/%05d.jpg`` and ``<seq>/groundtruth_rect.txt``."""
    for name, (files, boxes) in zip(names, src):
        _copy_frames(files, root / name / "img", "%05d.jpg")
        (root / name / "groundtruth_rect.txt").write_text(_csv(boxes))
    return root


def rotated_polygons(boxes: np.ndarray, degrees: float) -> np.ndarray:
    """Corners (x1, y1, ..., x4, y4) of each box turned about its centre."""
    angle = math.radians(degrees)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    polygons = []
    for x, y, w, h in boxes:
        centre = np.array([x + w / 2, y + h / 2])
        corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        polygons.append((corners @ rot.T + centre).reshape(-1))
    return np.array(polygons)


def write_vot(root: Path, src: Source, names=("ants1", "bag"), polygons: bool = True) -> Path:
    """``list.txt``, ``<seq>/%08d.jpg``, ``<seq>/groundtruth.txt`` (rotated rectangles as
    x1,y1,...,x4,y4, or VOT2013's x,y,w,h) and per-frame tags: camera_motion.tag for every
    frame, occlusion.tag shorter than the sequence (the rest is 0), an empty
    illum_change.tag."""
    for index, (name, (files, boxes)) in enumerate(zip(names, src)):
        folder = root / name
        _copy_frames(files, folder, "%08d.jpg")
        regions = rotated_polygons(boxes, 8.0 + 7 * index) if polygons else boxes
        (folder / "groundtruth.txt").write_text(_csv(regions, "%.2f"))
        count = len(files)
        (folder / "camera_motion.tag").write_text(
            "".join(f"{int(f % 3 == 0)}\n" for f in range(count)))
        (folder / "occlusion.tag").write_text(
            "".join(f"{int(f in (4, 5))}\n" for f in range(count - 3)))
        (folder / "illum_change.tag").write_text("")
    (root / "list.txt").write_text("\n".join(names) + "\n")
    return root
