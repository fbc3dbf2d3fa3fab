"""A discriminative scale filter (DSST: Danelljan et al., "Accurate scale estimation for robust
visual tracking", BMVC 2014), the size estimator CSRT uses too.

The target is cut at ``num`` scales ``step ** k`` (k = -num//2 ... num//2) around its current
size, each cut resized to one small model size (the first box's aspect, at most ``MODEL_AREA``
pixels) and described by a grid of HOG cells. A one-dimensional correlation filter over the
scale axis, learned online from every tracked frame at rate ``lr``, maps these samples to a
Gaussian that peaks at the true scale (k = 0): the peak of its response on a new frame is the
size change. Everything here is numpy and OpenCV on grey images; no network is involved.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from trackers.running import blend

MODEL_AREA = 512         # pixels of a resized cut at most (DSST: 32 x 16)
SIGMA_FACTOR = 0.25      # width of the desired response, in scales per sqrt(num / 33)
REGULARIZER = 1e-2       # lambda of the filter's denominator
CELL = 4                 # HOG cell side in pixels of the resized cut
BINS = 9                 # unsigned gradient orientations


def hog_cells(patches: np.ndarray, cell: int = CELL, bins: int = BINS) -> np.ndarray:
    """HOG of a stack of grey patches (N x H x W float64): N x H/cell x W/cell x bins histograms
    of gradient magnitude by unsigned orientation, each cell divided by the gradient energy of
    its 3 x 3 neighbourhood (so contrast changes do not move the filter)."""
    n, height, width = patches.shape
    rows, cols = height // cell, width // cell
    gy, gx = np.gradient(patches, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    orientation = np.mod(np.arctan2(gy, gx), np.pi)
    index = np.minimum((orientation * (bins / np.pi)).astype(np.int64), bins - 1)
    onehot = np.zeros((n, height, width, bins), dtype=np.float64)
    np.put_along_axis(onehot, index[..., None], magnitude[..., None], axis=3)
    onehot = onehot[:, :rows * cell, :cols * cell]
    hist = onehot.reshape(n, rows, cell, cols, cell, bins).sum(axis=(2, 4))
    energy = np.pad((hist ** 2).sum(axis=3), ((0, 0), (1, 1), (1, 1)), mode="edge")
    neighbourhood = sum(energy[:, r:r + rows, c:c + cols] for r in range(3) for c in range(3))
    return hist / np.sqrt(neighbourhood / 9.0 + 1e-6)[..., None]


def crop_resized(grey: np.ndarray, center: Sequence[float], size: Sequence[float],
                 out_size: Sequence[int]) -> np.ndarray:
    """The w x h box centred on ``center`` (edge pixels repeated outside the image), resized
    to ``out_size`` (width, height) with area averaging when it shrinks."""
    height, width = grey.shape
    w, h = max(1, int(round(size[0]))), max(1, int(round(size[1])))
    x0 = int(math.floor(center[0] - (w - 1) / 2.0))
    y0 = int(math.floor(center[1] - (h - 1) / 2.0))
    xs = np.clip(np.arange(x0, x0 + w), 0, width - 1)
    ys = np.clip(np.arange(y0, y0 + h), 0, height - 1)
    patch = grey[ys[:, None], xs[None, :]]
    shrink = w > out_size[0] and h > out_size[1]
    return cv2.resize(patch, tuple(int(v) for v in out_size),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class ScaleFilter:
    """DSST's scale filter: ``start`` on the first box, then per frame ``estimate`` the size
    change and ``learn`` from the box the tracker settles on."""

    def __init__(self, num: int = 33, step: float = 1.02, lr: float = 0.025):
        if num < 1 or num % 2 == 0:
            raise ValueError(f"the scale filter needs an odd, positive number of scales, got {num}")
        exponents = np.arange(num) - num // 2
        self.factors = step ** exponents.astype(np.float64)
        sigma = SIGMA_FACTOR * num / math.sqrt(33)
        self.label_fft = np.fft.fft(np.exp(-0.5 * (exponents / sigma) ** 2))
        self.window = np.hanning(num + 2)[1:-1]
        self.lr = lr
        self.numerator = self.denominator = None

    def start(self, grey: np.ndarray, center: Sequence[float], size: Sequence[float]) -> None:
        """Fix the model size from the first box (``size`` = (w, h)) and learn from it."""
        w, h = float(size[0]), float(size[1])
        shrink = min(1.0, math.sqrt(MODEL_AREA / (w * h)))
        self.model_size = (max(2 * CELL, int(w * shrink)), max(2 * CELL, int(h * shrink)))
        self.numerator = self.denominator = None
        self.learn(grey, center, size)

    def _samples_fft(self, grey: np.ndarray, center: Sequence[float],
                     size: Sequence[float]) -> np.ndarray:
        size = np.asarray(size, dtype=np.float64)
        patches = np.stack([crop_resized(grey, center, size * f, self.model_size)
                            for f in self.factors])
        features = hog_cells(patches).reshape(len(self.factors), -1)
        return np.fft.fft(features.T * self.window, axis=1)

    def estimate(self, grey: np.ndarray, center: Sequence[float],
                 size: Sequence[float]) -> float:
        """The factor by which the target's size (w, h) changed since the filter last learned."""
        if self.numerator is None:
            raise RuntimeError("ScaleFilter.estimate called before start")
        samples = self._samples_fft(grey, center, size)
        response = np.fft.ifft((self.numerator * samples).sum(axis=0)
                               / (self.denominator + REGULARIZER)).real
        return float(self.factors[int(np.argmax(response))])

    def learn(self, grey: np.ndarray, center: Sequence[float], size: Sequence[float]) -> None:
        """Move the filter towards the one that maps this box's samples to the label."""
        samples = self._samples_fft(grey, center, size)
        numerator = self.label_fft * np.conj(samples)
        denominator = (samples * np.conj(samples)).real.sum(axis=0)
        self.numerator = blend(self.numerator, numerator, self.lr)
        self.denominator = blend(self.denominator, denominator, self.lr)
