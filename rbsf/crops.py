"""SiamFC crops, shared by training-pair sampling and the tracker.

Images are numpy arrays H x W x 3, uint8, RGB. Boxes are (x, y, w, h) in pixels with (x, y) the
top-left corner (OTB / GOT-10k convention); centres are (cx, cy) in pixel coordinates where the
centre of the top-left pixel is (0, 0).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import cv2
import numpy as np

Box = Tuple[float, float, float, float]


def box_center(box: Sequence[float]) -> Tuple[float, float]:
    """Centre (cx, cy) of an (x, y, w, h) box, in pixel-centre coordinates."""
    x, y, w, h = box
    return x + (w - 1) / 2.0, y + (h - 1) / 2.0


def exemplar_crop_size(w: float, h: float, context: float = 0.5) -> float:
    """Side of the square exemplar crop: sqrt((w + p)(h + p)) with p = context * (w + h)."""
    pad = context * (w + h)
    return math.sqrt((w + pad) * (h + pad))


def crop_and_resize(image: np.ndarray, center: Tuple[float, float], size: float, out_size: int,
                    fill: Sequence[float] = (0, 0, 0)) -> np.ndarray:
    """Square crop of side ``size`` centred on ``center``, resized to ``out_size``.

    Parts outside the image take the colour ``fill`` (SiamFC uses the image's mean colour).
    One affine warp does the crop, the padding and the resize; a large shrink warps to an
    integer multiple of ``out_size`` first and then box-averages, so it does not alias.
    """
    factor = max(1, int(size / out_size))
    warp_size = out_size * factor
    scale = size / warp_size
    cx, cy = center
    offset_x = cx - (size - 1) / 2.0 + (scale - 1) / 2.0
    offset_y = cy - (size - 1) / 2.0 + (scale - 1) / 2.0
    matrix = np.array([[scale, 0.0, offset_x], [0.0, scale, offset_y]], dtype=np.float64)
    patch = cv2.warpAffine(image, matrix, (warp_size, warp_size),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT,
                           borderValue=tuple(float(v) for v in fill))
    if factor > 1:
        patch = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_AREA)
    return patch


def mean_color(image: np.ndarray) -> Tuple[float, float, float]:
    """Mean colour of an image, the SiamFC padding value."""
    return tuple(float(v) for v in image.reshape(-1, image.shape[-1]).mean(axis=0))


def to_rgb_array(image) -> np.ndarray:
    """Any image (PIL image, H x W gray, H x W x 3/4 array) as an H x W x 3 uint8 RGB array."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an image of H x W (x 1/3/4) values, got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)
