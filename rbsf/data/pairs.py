"""SiamFC training pairs: frame filtering, pair sampling, exemplar / search crops, labels."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence as Seq, Tuple

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, get_worker_info

from rbsf.crops import box_center, crop_and_resize, exemplar_crop_size
from rbsf.data.sequences import DatasetError, Sequence

log = logging.getLogger("rbsf.data")

JPEG_SUFFIXES = (".jpg", ".jpeg")
COUNTER_SLOTS = 64          # one skip counter per DataLoader worker (slot 0: the main process)
REDUCED_READS = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                 (2, cv2.IMREAD_REDUCED_COLOR_2))


@dataclass
class PairConfig:
    """Crop sizes, augmentation and frame filter of SiamFC training pairs (defaults: SiamFC paper).

    The search crop is the instance crop (``instance_size``, context-scaled like the exemplar)
    stretched by up to ``stretch``, centre-cropped to ``center_size`` (instance_size - 8) and
    randomly cropped to ``search_size``. Frames are kept when the target is visible and its box
    passes the area / side / relative-size / aspect thresholds.

    ``negative_pairs`` (beyond SiamFC, after DaSiamRPN's negative pairs) is the share of pairs
    whose search crop is centred on the target of *another* sequence: a pair whose every
    response cell is negative (label 0), so that the net learns to tell objects apart rather
    than to find any object. 0 (the default) draws exactly SiamFC's pairs.
    """

    exemplar_size: int = 127
    instance_size: int = 255
    search_size: int = 239
    context: float = 0.5
    stretch: float = 0.05
    max_gap: int = 100
    min_area: float = 20.0
    min_side: float = 20.0
    max_side: float = 500.0
    min_rel_size: float = 0.01
    max_rel_size: float = 0.5
    min_aspect: float = 0.25
    max_aspect: float = 4.0
    max_retries: int = 20
    reduced_decode: bool = True      # decode JPEGs at 1/2, 1/4, 1/8 size if the crop shrinks so
    negative_pairs: float = 0.0      # share of pairs whose search crop shows another target

    @property
    def center_size(self) -> int:
        return self.instance_size - 8

    @property
    def max_shift(self) -> int:
        """Largest random-crop offset of the search crop, in output pixels."""
        return max(0, (self.center_size - self.search_size) // 2)


def valid_frames(seq: Sequence, image_size: Tuple[int, int], config: PairConfig) -> np.ndarray:
    """Indices of frames usable for training (visible target, box within the filter thresholds)."""
    boxes = np.nan_to_num(seq.boxes, nan=-1.0)
    w, h = boxes[:, 2], boxes[:, 3]
    img_w, img_h = image_size
    aspect = w / np.maximum(h, 1.0)
    ok = (seq.visible
          & (w * h >= config.min_area)
          & (np.minimum(w, h) >= config.min_side) & (np.maximum(w, h) <= config.max_side)
          & (np.minimum(w / img_w, h / img_h) >= config.min_rel_size)
          & (np.maximum(w / img_w, h / img_h) <= config.max_rel_size)
          & (aspect >= config.min_aspect) & (aspect <= config.max_aspect))
    return np.flatnonzero(ok)


def _image_size(seq: Sequence) -> Optional[Tuple[int, int]]:
    """(W, H) of the first readable frame of a sequence, read from the file header only."""
    for path in seq.frames[:5]:
        try:
            with Image.open(path) as img:
                return img.size
        except (OSError, ValueError):
            continue
    return None


def read_frame(path: str, reduce: int = 1) -> Tuple[Optional[np.ndarray], int]:
    """A BGR frame, decoded at 1/reduce size when it is a JPEG (much faster for big frames).

    Returns (image or None when unreadable, the reduction actually used).
    """
    flag, used = cv2.IMREAD_COLOR, 1
    if path.lower().endswith(JPEG_SUFFIXES):
        for factor, reduced_flag in REDUCED_READS:
            if reduce >= factor:
                flag, used = reduced_flag, factor
                break
    try:
        image = cv2.imread(path, flag)
    except cv2.error:
        image = None
    return image, used


def balanced_labels(response_size: int, total_stride: int = 8,
                    radius: float = 16) -> Tuple[torch.Tensor, torch.Tensor]:
    """SiamFC labels and weights, 1 x 1 x R x R each.

    A cell is positive (1) when its distance to the centre is within ``radius / total_stride``
    cells, else negative (0). Positive weights and negative weights each sum to 0.5.
    """
    offsets = np.arange(response_size) - (response_size - 1) / 2.0
    dist = np.sqrt(offsets[None, :] ** 2 + offsets[:, None] ** 2)
    labels = (dist <= radius / total_stride).astype(np.float32)
    pos, neg = labels.sum(), labels.size - labels.sum()
    weights = np.where(labels > 0, 0.5 / max(pos, 1), 0.5 / max(neg, 1)).astype(np.float32)
    return (torch.from_numpy(labels).view(1, 1, response_size, response_size),
            torch.from_numpy(weights).view(1, 1, response_size, response_size))


def pair_labels(positive: torch.Tensor, response_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Labels and weights, N x 1 x R x R each, of N pairs whose ``positive`` (N) is 1 or 0.

    A positive pair gets ``balanced_labels``; a negative pair is negative everywhere, with equal
    weights summing to 1 (so a constant response still gives ln 2).
    """
    labels, weights = (t.to(positive.device) for t in balanced_labels(response_size))
    positive = positive.view(-1, 1, 1, 1).to(labels.dtype)
    uniform = torch.full_like(weights, 1.0 / weights.numel())
    return labels * positive, torch.where(positive > 0, weights, uniform)


class PairDataset(Dataset):
    """``pairs_per_epoch`` random SiamFC pairs drawn from ``sequences``.

    Item i of epoch e is a pure function of (seed, e, i): the same whatever the number or order
    of DataLoader workers. An item is (z, x, label): z is 3 x exemplar x exemplar and x is
    3 x search x search, float32 raw 0-255 RGB, the target centred (x: up to the random-crop
    shift); label is 1.0 for a positive pair, 0.0 for a negative one (``negative_pairs``).
    A pair whose frames cannot be read is skipped with a warning and another pair is drawn in
    its place; the count of skipped pairs is shared by all worker processes
    (``skipped_pairs``).
    """

    def __init__(self, sequences: Seq[Sequence], config: PairConfig, pairs_per_epoch: int,
                 seed: int = 0):
        self.config = config
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.seed = int(seed)
        self.sequences: List[Sequence] = []
        self.valid: List[np.ndarray] = []
        unreadable, filtered = [], []
        for seq in sequences:
            size = _image_size(seq)
            if size is None:
                log.warning("sequence %s: no readable frame among its first five; skipped",
                            seq.name)
                unreadable.append(seq)
                continue
            idx = valid_frames(seq, size, config)
            if len(idx) >= 2:
                self.sequences.append(seq)
                self.valid.append(idx)
            else:
                filtered.append((seq, size))
        if not self.sequences:
            raise DatasetError(_no_pairs_message(unreadable, filtered, config))
        # shared-memory state, seen and written by DataLoader workers (fork or spawn, persistent
        # or not): the epoch, and one skip counter per worker so that no two processes race
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._skipped = torch.zeros(COUNTER_SLOTS, dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the pairs of ``epoch`` (seen by persistent workers too)."""
        self._epoch[0] = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    @property
    def skipped_pairs(self) -> int:
        """Pairs skipped so far because a frame could not be read, over all workers."""
        return int(self._skipped.sum())

    def _count_skip(self) -> int:
        worker = get_worker_info()
        slot = 0 if worker is None else 1 + worker.id % (COUNTER_SLOTS - 1)
        self._skipped[slot] += 1
        return self.skipped_pairs

    def _sample(self, rng: np.random.Generator) -> Tuple[Sequence, int, Sequence, int]:
        """(exemplar sequence, its frame, search sequence, its frame): the same sequence for a
        positive pair, another one for a negative pair."""
        k = int(rng.integers(len(self.sequences)))
        seq, valid = self.sequences[k], self.valid[k]
        z = int(valid[rng.integers(len(valid))])
        if self.config.negative_pairs > 0 and len(self.sequences) > 1 \
                and rng.random() < self.config.negative_pairs:
            other = (k + 1 + int(rng.integers(len(self.sequences) - 1))) % len(self.sequences)
            frames = self.valid[other]
            return seq, z, self.sequences[other], int(frames[rng.integers(len(frames))])
        near = valid[(np.abs(valid - z) <= self.config.max_gap) & (valid != z)]
        x = int(near[rng.integers(len(near))]) if len(near) else z
        return seq, z, seq, x

    def _crop(self, path: str, box: np.ndarray, crop_size: float, out_size: int,
              shift: Tuple[float, float] = (0.0, 0.0)) -> Optional[np.ndarray]:
        """RGB square crop of side ``crop_size`` around the box centre (+ shift, output pixels)."""
        image, r = read_frame(path, int(crop_size / out_size) if self.config.reduced_decode else 1)
        if image is None:
            return None
        cx, cy = box_center(box)
        step = crop_size / out_size
        cx, cy = cx + shift[0] * step, cy + shift[1] * step
        # a pixel of a 1/r decoded image covers original pixels [j r, (j + 1) r)
        center = ((cx - (r - 1) / 2.0) / r, (cy - (r - 1) / 2.0) / r)
        fill = cv2.mean(image)[:3]
        patch = crop_and_resize(image, center, crop_size / r, out_size, fill)
        return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)

    def _pair(self, rng: np.random.Generator) -> Tuple[Optional[np.ndarray], Optional[np.ndarray],
                                                       bool, List[str]]:
        cfg = self.config
        seq_z, iz, seq_x, ix = self._sample(rng)
        stretch_z, stretch_x = rng.uniform(1 - cfg.stretch, 1 + cfg.stretch, 2)
        shift = rng.integers(-cfg.max_shift, cfg.max_shift + 1, 2)
        box_z, box_x = seq_z.boxes[iz], seq_x.boxes[ix]
        s_z = exemplar_crop_size(box_z[2], box_z[3], cfg.context)
        z = self._crop(seq_z.frames[iz], box_z, s_z / stretch_z, cfg.exemplar_size)
        s_x = (exemplar_crop_size(box_x[2], box_x[3], cfg.context) * cfg.instance_size
               / cfg.exemplar_size)
        x_side = s_x / stretch_x * cfg.search_size / cfg.instance_size
        x = None if z is None else self._crop(seq_x.frames[ix], box_x, x_side, cfg.search_size,
                                              (float(shift[0]), float(shift[1])))
        bad = [p for p, img in ((seq_z.frames[iz], z), (seq_x.frames[ix], x)) if img is None]
        return z, x, seq_x is seq_z, bad

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.pairs_per_epoch:
            raise IndexError(index)
        for attempt in range(self.config.max_retries):
            rng = np.random.default_rng([self.seed, self.epoch, index, attempt])
            z, x, positive, bad = self._pair(rng)
            if not bad:
                return _to_tensor(z), _to_tensor(x), torch.tensor(float(positive))
            log.warning("unreadable frame %s: pair %d skipped (%d skipped so far)",
                        bad[0], index, self._count_skip())
        raise RuntimeError(f"{self.config.max_retries} pairs in a row had unreadable frames "
                           f"(last: {bad[0]}); check the dataset files")


def _filter_text(config: PairConfig) -> str:
    c = config
    return (f"the SiamFC filter (visible, sides {c.min_side:g}-{c.max_side:g} px, area >= "
            f"{c.min_area:g} square px, sides {c.min_rel_size:g}-{c.max_rel_size:g} of the "
            f"frame's, aspect {c.min_aspect:g}-{c.max_aspect:g})")


def _target_sizes(filtered: List[Tuple[Sequence, Tuple[int, int]]]) -> str:
    """'visible targets measure 8x5 to 30x21 px in 240x180 frames' over the filtered sequences."""
    boxes = np.concatenate([seq.boxes[seq.visible & np.all(np.isfinite(seq.boxes), axis=1)]
                            for seq, _ in filtered])
    frames = " or ".join(sorted({f"{w}x{h}" for _, (w, h) in filtered}))
    if not len(boxes):
        return f"no target is visible in any frame ({frames} frames)"
    order = np.argsort(boxes[:, 2:].max(axis=1))
    small, large = boxes[order[0], 2:], boxes[order[-1], 2:]
    return (f"visible targets measure {small[0]:.0f}x{small[1]:.0f} to {large[0]:.0f}x"
            f"{large[1]:.0f} px in {frames} frames")


def _no_pairs_message(unreadable: List[Sequence], filtered: List[Tuple[Sequence, Tuple[int, int]]],
                      config: PairConfig) -> str:
    """Why no sequence gave training pairs: unreadable frames, targets filtered out, or both."""
    count = len(unreadable) + len(filtered)
    head = f"no training pairs in {count} sequence{'s' if count != 1 else ''}: "
    example = unreadable[0].frames[0] if unreadable and unreadable[0].frames else ""
    fix_frames = "check or re-copy the frame files"
    fix_boxes = ("use frames whose targets are larger (make_synthetic.py: the default --size "
                 "480x360) or check the boxes")
    if not filtered:
        return (head + f"the frames of every sequence are unreadable (e.g. {example}: not an "
                f"image file); {fix_frames}")
    if not unreadable:
        return (head + f"no sequence has two frames whose target passes {_filter_text(config)}; "
                f"{_target_sizes(filtered)}; {fix_boxes}")
    return (head + f"{len(unreadable)} with unreadable frames (e.g. {example}) and "
            f"{len(filtered)} without two frames whose target passes {_filter_text(config)}; "
            f"{fix_frames}, and {fix_boxes}")


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
