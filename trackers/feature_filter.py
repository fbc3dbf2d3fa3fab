"""An online correlation filter over the network's search embedding: a discriminative model of
the target against its surroundings, learned while tracking (the multi-channel correlation
filter of MOSSE / DSST, as the scale filter uses it, applied to deep features as CFNet and
DCFNet do).

SiamFC matches a fixed exemplar with an embedding learned offline; where that embedding never
saw the kind of object it follows, the match is weak. This filter learns from the frames
themselves which channels and positions tell the target from what surrounds it. It reads the
C x H x W embedding of a search crop, windowed by a Hann window, and maps it to a Gaussian that
peaks on the target; its response on a new crop is read at the cells of SiamFC's response map,
so the two maps can be added.

Alignment: SiamFC's response cell i (of R) stands for a displacement of i - (R - 1) / 2 cells
from the crop's centre. The filter's label peaks at cell ``(H - 1) // 2`` for a target at the
centre, so a displacement d moves its response peak to that cell + d, and SiamFC's cells i are
the filter's cells i + ``(H - 1) // 2 - (R - 1) // 2``. Both maps count displacements in the
same feature cells (the network's total stride in crop pixels).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from trackers.running import blend

REGULARIZER = 1e-2       # lambda of the filter's denominator, as a share of its mean energy


class FeatureFilter:
    """A correlation filter over H x W feature maps: ``start`` on the first search embedding,
    then per frame ``respond`` to the new ones and ``learn`` from the one the tracker chose.
    Each takes the spectra of :meth:`transform`, so a frame's embeddings are transformed once.
    Embeddings are float tensors (or arrays) on the CPU; the Fourier transforms are PyTorch's."""

    def __init__(self, height: int, width: int, response_size: int, sigma: float, lr: float):
        if response_size > min(height, width):
            raise ValueError(f"a {response_size}-cell response does not fit {height} x {width} "
                             f"feature maps")
        self.shape = (height, width)
        self.center = np.array([(height - 1) // 2, (width - 1) // 2], dtype=np.float64)
        first = self.center.astype(np.int64) - (response_size - 1) // 2
        self.rows = slice(first[0], first[0] + response_size)
        self.cols = slice(first[1], first[1] + response_size)
        self.window = torch.from_numpy(np.outer(np.hanning(height + 2)[1:-1],
                                                np.hanning(width + 2)[1:-1]).astype(np.float32))
        self.sigma = sigma
        self.lr = lr
        self.numerator = self.denominator = None
        self.regularizer = 0.0

    def _label_fft(self, shift: Sequence[float]) -> torch.Tensor:
        """The Gaussian label peaking at the centre cell moved by ``shift`` (dx, dy) cells,
        wrapped around the map as the filter's circular correlation sees it."""
        height, width = self.shape
        peak = self.center + np.array([shift[1], shift[0]], dtype=np.float64)
        dy = (np.arange(height) - peak[0] + height / 2) % height - height / 2
        dx = (np.arange(width) - peak[1] + width / 2) % width - width / 2
        label = np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / self.sigma ** 2)
        return torch.fft.rfft2(torch.from_numpy(label.astype(np.float32)))

    def transform(self, embeddings) -> torch.Tensor:
        """The spectra of windowed embeddings (... x C x H x W) that the other methods take."""
        embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
        if tuple(embeddings.shape[-2:]) != self.shape:
            raise ValueError(f"feature maps of {tuple(embeddings.shape[-2:])} cells, the filter "
                             f"was made for {self.shape}")
        return torch.fft.rfft2(embeddings * self.window)

    def start(self, spectrum: torch.Tensor) -> None:
        """Learn from the first search embedding's spectrum (of C x H x W), the target at its
        centre."""
        self.numerator = self.denominator = None
        self.learn(spectrum, (0.0, 0.0))
        self.regularizer = REGULARIZER * float(self.denominator.mean())

    def respond(self, spectra: torch.Tensor) -> np.ndarray:
        """The filter's response to N search embeddings (their spectra, of N x C x H x W) at
        the cells of SiamFC's response map: N x R x R."""
        if self.numerator is None:
            raise RuntimeError("FeatureFilter.respond called before start")
        response = torch.fft.irfft2((self.numerator * spectra).sum(dim=1)
                                    / (self.denominator + self.regularizer), s=self.shape)
        return response[:, self.rows, self.cols].numpy()

    def learn(self, spectrum: torch.Tensor, shift: Sequence[float]) -> None:
        """Move the filter towards the one that maps this embedding (its spectrum, of
        C x H x W) to a label peaking ``shift`` (dx, dy) cells from the centre, where the
        tracker put the target."""
        numerator = self._label_fft(shift) * torch.conj_physical(spectrum)
        denominator = (spectrum.real ** 2 + spectrum.imag ** 2).sum(dim=0)
        self.numerator = blend(self.numerator, numerator, self.lr)
        self.denominator = blend(self.denominator, denominator, self.lr)
