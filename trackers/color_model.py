"""A colour model of the target against its surroundings: the per-pixel score of Staple
(Bertinetto et al., CVPR 2016) and the object likelihood of DAT (Possegger et al., CVPR 2015).

Two RGB histograms, one of the pixels inside the target's box and one of the pixels of the
context region around it (the box padded by the mean of its sides, SiamFC's exemplar context),
give each colour the probability that a pixel of that colour belongs to the target. A
candidate position scores the mean of that probability over a box of the target's size
centred on it. Colours never seen score 0.

A look-alike of another colour, or a background the target's colours stand out from, scores
low, whatever the network's embedding makes of it; a target the colours cannot tell from its
surroundings gives a flat map, which changes no peak.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from trackers.running import blend

INNER_PADDING = 0.2     # the foreground is the box shrunk by this share of its mean side,
                        # so a box's corners (often background) count less as target
BINS_RANGE = (2, 64)    # bins a channel: 64 ** 3 bins is the largest histogram kept


class ColorModel:
    """Foreground and background colour histograms, ``bins`` a channel, learned at rate ``lr``
    from each frame's box (:meth:`learn`), scored on search crops (:meth:`respond`)."""

    def __init__(self, bins: int, lr: float):
        if not BINS_RANGE[0] <= bins <= BINS_RANGE[1]:
            raise ValueError(f"colour histograms need {BINS_RANGE[0]} to {BINS_RANGE[1]} bins a "
                             f"channel, got {bins}")
        self.bins = bins
        self.lr = lr
        self.foreground: Optional[np.ndarray] = None
        self.background: Optional[np.ndarray] = None

    def _bin_index(self, pixels: np.ndarray) -> np.ndarray:
        """The histogram bin of each RGB uint8 pixel (... x 3)."""
        quantized = pixels.astype(np.int64) * self.bins // 256
        return (quantized[..., 0] * self.bins + quantized[..., 1]) * self.bins + quantized[..., 2]

    def _histogram(self, pixels: np.ndarray) -> np.ndarray:
        """The colour distribution of N x 3 pixels (all zero for none)."""
        counts = np.bincount(self._bin_index(pixels), minlength=self.bins ** 3)
        return counts / max(len(pixels), 1)

    def learn(self, image: np.ndarray, center: Sequence[float], size: Sequence[float]) -> None:
        """Move both histograms towards this frame's: ``image`` H x W x 3 uint8 RGB, the
        target's ``center`` (cx, cy) and ``size`` (w, h) in its pixels. The first call sets
        them."""
        height, width = image.shape[:2]
        size = np.asarray(size, dtype=np.float64)
        center = np.asarray(center, dtype=np.float64)
        context = size + size.mean()
        inner = np.maximum(size - INNER_PADDING * size.mean(), 1.0)

        # the pixels whose centres lie in [center - extent / 2, + extent / 2)
        def bounds(extent):
            low, high = (np.clip(np.ceil(center + sign * extent / 2), 0, [width, height])
                         for sign in (-1, 1))
            return low.astype(int), high.astype(int)

        (x0, y0), (x1, y1) = bounds(context)
        (fx0, fy0), (fx1, fy1) = bounds(inner)
        (bx0, by0), (bx1, by1) = bounds(size)
        region = image[y0:y1, x0:x1]
        outside = np.ones(region.shape[:2], dtype=bool)
        outside[max(by0 - y0, 0):max(by1 - y0, 0), max(bx0 - x0, 0):max(bx1 - x0, 0)] = False
        foreground = self._histogram(image[fy0:fy1, fx0:fx1].reshape(-1, 3))
        background = self._histogram(region[outside])
        if not foreground.any():
            return
        self.foreground = blend(self.foreground, foreground, self.lr)
        self.background = blend(self.background, background, self.lr)

    def likelihood(self, image: np.ndarray) -> np.ndarray:
        """P(target | colour) of each pixel of an H x W x 3 uint8 RGB image (H x W float32)."""
        if self.foreground is None:
            raise RuntimeError("ColorModel.likelihood called before learn")
        total = self.foreground + self.background
        table = np.divide(self.foreground, total, out=np.zeros_like(total), where=total > 0)
        return table.astype(np.float32)[self._bin_index(image)]

    def respond(self, crop: np.ndarray, box_size: Sequence[float],
                coords: np.ndarray) -> np.ndarray:
        """The mean likelihood over a ``box_size`` (w, h) box, in ``crop`` pixels, centred at
        each point of the grid ``coords`` x ``coords`` (crop pixel coordinates, the centre of
        the top-left pixel at 0): a len(coords) x len(coords) map, rows along y."""
        width, height = (2 * max(0, int(round((s - 1) / 2))) + 1 for s in box_size)  # odd: centred
        mean = cv2.boxFilter(self.likelihood(crop), -1, (width, height),
                             borderType=cv2.BORDER_CONSTANT)
        grid = coords.astype(np.float32)
        map_x = np.broadcast_to(grid[None, :], (len(grid), len(grid)))
        map_y = np.broadcast_to(grid[:, None], (len(grid), len(grid)))
        return cv2.remap(mean, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
