"""Contact sheets of sequences with their boxes drawn, to check ground truth by eye."""
from __future__ import annotations

from typing import Optional, Sequence as Seq

import cv2
import numpy as np

from rbsf.data.sequences import Sequence


def sequence_sheet(seq: Sequence, count: int = 6, columns: int = 3, width: int = 320,
                   other: Optional[np.ndarray] = None) -> np.ndarray:
    """BGR sheet of ``count`` evenly spaced frames of ``seq``, ground truth in green (and
    ``other`` boxes, e.g. a tracker's, in red), each tile labelled with its frame number."""
    picks = np.linspace(0, len(seq.frames) - 1, count).astype(int)
    return frames_sheet(seq, picks, columns, width, other)


def frames_sheet(seq: Sequence, picks: Seq[int], columns: int = 3, width: int = 320,
                 other: Optional[np.ndarray] = None) -> np.ndarray:
    """BGR sheet of the frames ``picks`` (0-based) of ``seq`` with boxes drawn."""
    tiles = []
    for index in picks:
        image = cv2.imread(seq.frames[index], cv2.IMREAD_COLOR)
        scale = width / image.shape[1]
        for boxes, colour in ((seq.boxes, (0, 220, 0)), (other, (0, 0, 255))):
            if boxes is None or not np.all(np.isfinite(boxes[index])):
                continue
            x, y, w, h = boxes[index]
            cv2.rectangle(image, (int(round(x)), int(round(y))),
                          (int(round(x + w - 1)), int(round(y + h - 1))), colour, 2)
        tile = cv2.resize(image, (width, int(round(image.shape[0] * scale))))
        label = f"{index + 1}{'' if seq.visible[index] else ' (hidden)'}"
        cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 2)
        tiles.append(tile)
    height = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT)
             for t in tiles]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
