"""Alpha-matted objects (Tux Paint stamps): reading, the photo / drawing filter, the index.

The stamps mix photographs of things (animals, food, plants, tools, vehicles) with drawings
(cartoons, letters, symbols). Trackers trained on flat-filled drawings learn little about real
objects, so each stamp gets a ``weight``:

* dropped (weight 0): stamps of the ``symbols`` category (letters, digits, maths, shapes,
  money symbols), stamps that come with an SVG of the same name (vector drawings), stamps whose
  mask covers under ``MIN_PIXELS`` pixels, stamps without transparency (no mask), and stamps
  whose inside is mostly flat fill:
  ``flat`` (share of inside pixels whose 3x3 neighbourhood varies by at most ``FLAT_STEP``
  grey levels) above ``MAX_FLAT``;
* kept (weight 1) when the inside is textured (``flat`` at most ``PHOTO_FLAT``) with many
  colours (``colours``, distinct 5-bit RGB values per 1000 inside pixels, at least
  ``PHOTO_COLOURS``); weight ``DRAWING_WEIGHT`` in between (shaded drawings, flat-ish photos).

``category`` is the first two folders of the stamp's path (``animals/mammals``): look-alike
distractors are drawn from the same category.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import cv2
import numpy as np
from PIL import Image

from rbsf.errors import RBSFError

DROP_CATEGORIES = ("symbols",)
MIN_PIXELS = 400
FLAT_STEP = 2
MAX_FLAT = 0.55
PHOTO_FLAT = 0.30
PHOTO_COLOURS = 15.0
DRAWING_WEIGHT = 0.25
INDEX_NAME = "stamps.json"


class StampError(RBSFError):
    """A stamp file or stamp index that cannot be read."""


@dataclass
class StampInfo:
    """One stamp: its file (relative to the stamps folder), category, measures and weight."""

    path: str
    category: str
    width: int
    height: int
    pixels: int
    flat: float
    colours: float
    vector: bool
    weight: float
    reason: str


def read_stamp(path: Path) -> tuple:
    """(RGB uint8 image, alpha float32 in 0..1) of a PNG stamp (palette transparency
    included; an image without transparency gets an all-ones alpha)."""
    try:
        with Image.open(path) as image:
            rgba = np.asarray(image.convert("RGBA"))
    except (OSError, ValueError) as exc:
        raise StampError(f"cannot read stamp {path} ({exc}); re-fetch the stamps source") from None
    return np.ascontiguousarray(rgba[..., :3]), rgba[..., 3].astype(np.float32) / 255.0


def measure(rgb: np.ndarray, alpha: np.ndarray) -> tuple:
    """(inside pixels, flat share, colours per 1000 inside pixels) of one stamp."""
    inside = cv2.erode((alpha > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    pixels = int(inside.sum())
    if pixels == 0:
        return 0, 1.0, 0.0
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)
    kernel = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(grey, kernel) - cv2.erode(grey, kernel)
    flat = float((spread[inside] <= FLAT_STEP).mean())
    q = (rgb[inside] >> 3).astype(np.int32)
    distinct = len(np.unique(q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2]))
    return pixels, flat, 1000.0 * distinct / pixels


def classify(category: str, pixels: int, flat: float, colours: float, vector: bool,
             opaque: bool = False) -> tuple:
    """(weight, reason) by the rule in the module docstring."""
    if category.split("/")[0] in DROP_CATEGORIES:
        return 0.0, "symbol category"
    if vector:
        return 0.0, "vector drawing (svg)"
    if pixels < MIN_PIXELS:
        return 0.0, "too small"
    if opaque:
        return 0.0, "no mask"
    if flat > MAX_FLAT:
        return 0.0, "flat fill"
    if flat <= PHOTO_FLAT and colours >= PHOTO_COLOURS:
        return 1.0, "photo"
    return DRAWING_WEIGHT, "in between"


def describe(root: Path, path: Path) -> StampInfo:
    """Measure and classify one stamp file under the stamps folder ``root``."""
    rgb, alpha = read_stamp(path)
    relative = path.relative_to(root)
    category = "/".join(relative.parts[:2]) if len(relative.parts) > 2 else relative.parts[0]
    pixels, flat, colours = measure(rgb, alpha)
    vector = path.with_suffix(".svg").is_file()
    opaque = bool(alpha.min() > 0.99)
    weight, reason = classify(category, pixels, flat, colours, vector, opaque)
    return StampInfo(relative.as_posix(), category, rgb.shape[1], rgb.shape[0], pixels,
                     round(flat, 4), round(colours, 2), vector, weight, reason)


def build_index(root: Path) -> List[StampInfo]:
    """Every PNG stamp under ``root``, measured and classified (sorted by path)."""
    root = Path(root)
    infos = [describe(root, path) for path in sorted(root.rglob("*.png"))]
    if not infos:
        raise StampError(f"no .png stamp under {root}")
    return infos


def save_index(infos: Sequence[StampInfo], path: Path) -> None:
    from rbsf.files import atomic_open

    with atomic_open(path) as handle:
        json.dump([asdict(i) for i in infos], handle, indent=1)


def load_index(path: Path) -> List[StampInfo]:
    if not Path(path).is_file():
        raise StampError(f"no stamp index {path}; build it with "
                         f"`python tools/prepare_data.py stamps`")
    return [StampInfo(**item) for item in json.loads(Path(path).read_text())]


def summary(infos: Sequence[StampInfo]) -> Dict[str, int]:
    """How many stamps each reason covers."""
    counts: Dict[str, int] = {}
    for info in infos:
        counts[info.reason] = counts.get(info.reason, 0) + 1
    return counts


def contact_sheet(root: Path, infos: Sequence[StampInfo], tile: int = 72,
                  columns: int = 16) -> np.ndarray:
    """BGR image of the stamps on grey tiles, each framed by its class (green photo, yellow in
    between, red dropped) and labelled with its flat share."""
    colours = {1.0: (0, 200, 0), DRAWING_WEIGHT: (0, 200, 230), 0.0: (0, 0, 230)}
    rows = (len(infos) + columns - 1) // columns
    sheet = np.full((rows * tile, columns * tile, 3), 128, np.uint8)
    for k, info in enumerate(infos):
        rgb, alpha = read_stamp(Path(root) / info.path)
        scale = (tile - 8) / max(rgb.shape[:2])
        size = (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        a = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)[..., None]
        y, x = (k // columns) * tile, (k % columns) * tile
        cell = sheet[y:y + tile, x:x + tile]
        cv2.rectangle(cell, (0, 0), (tile - 1, tile - 1), colours.get(info.weight, (255, 0, 0)), 3)
        oy, ox = (tile - size[1]) // 2, (tile - size[0]) // 2
        region = cell[oy:oy + size[1], ox:ox + size[0]].astype(np.float32)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.float32)
        cell[oy:oy + size[1], ox:ox + size[0]] = (region * (1 - a) + bgr * a).astype(np.uint8)
        cv2.putText(cell, f"{info.flat:.2f}", (3, tile - 4), cv2.FONT_HERSHEY_PLAIN, 0.8,
                    (255, 255, 255), 1)
    return sheet
