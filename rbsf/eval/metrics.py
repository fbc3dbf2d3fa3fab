"""Tracking metrics of the OTB / UAV123 and GOT-10k protocols.

Boxes are N x 4 arrays (x, y, w, h). The definitions follow the benchmarks' toolkits:

* OTB / UAV123 (one-pass evaluation): the first frame counts with the ground-truth box; frames
  whose ground truth is NaN (UAV123's absent target) are left out; success curve over 21 IoU
  thresholds ``linspace(0, 1, 21)`` (IoU strictly greater), AUC = mean of the curve; precision
  curve over centre-error thresholds 0..50 px (error <= threshold), precision = value at 20 px;
  SR0.5 = success at IoU 0.5. Curves are averaged over sequences.
* GOT-10k: IoU of frames 2..N with both boxes clipped to the image, frames with the target
  visible only, pooled over all sequences; AO = mean IoU, SR0.5 / SR0.75 = share of IoUs above
  0.5 / 0.75, success curve over 101 thresholds.
* LaSOT (its evaluation toolkit's ``calc_seq_err_robust`` / ``eval_tracker``, as pytracking
  computes it too): a result box that is NaN or not positive in size takes the previous one; the
  first frame counts with the ground-truth box; only frames with the target visible (neither
  fully occluded nor out of view) and a valid box can succeed, but every frame counts in the
  denominator. Success over 21 IoU thresholds (AUC = mean), precision over 0..50 px (value at
  20 px), normalised precision: the centre error with both centres divided by the ground-truth
  width and height, over thresholds 0, 0.01, ..., 0.5, scored by its AUC (mean), as the LaSOT
  and TrackingNet papers rank it (pytracking prints the value at 0.2 instead, ``[20]`` of the
  curve). Curves are averaged over sequences (the MATLAB toolkit also drops sequences whose
  curve is all zero; this does not).
* Speed: OTB averages each sequence's mean per-frame fps; GOT-10k averages the per-frame fps of
  all frames pooled (frames with a non-positive time are left out).
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

OTB_IOU_BINS = 21
GOT_IOU_BINS = 101
CE_BINS = 51
PRECISION_PX = 20
NORM_THRESHOLDS = np.arange(51) / 100.0   # normalised centre error 0, 0.01, ..., 0.5


def _matching(boxes: np.ndarray, gt: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Both box lists as float64 N x 4 arrays; ``ValueError`` when their shapes differ."""
    a = np.array(boxes, dtype=np.float64, ndmin=2)
    b = np.array(gt, dtype=np.float64, ndmin=2)
    if a.shape != b.shape:
        raise ValueError(f"box arrays differ in shape: {a.shape} vs {b.shape}")
    return a, b


def size_ratio(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per row, the box's side over the true box's (square roots of their areas); NaN where
    the true box is missing, empty or not finite."""
    a, b = _matching(boxes, gt)
    true_area = b[:, 2] * b[:, 3]
    valid = np.all(np.isfinite(b), axis=1) & (true_area > 0)
    out = np.full(len(a), np.nan)
    out[valid] = np.sqrt(np.maximum(a[valid, 2] * a[valid, 3], 0) / true_area[valid])
    return out


def iou(boxes: np.ndarray, gt: np.ndarray,
        bound: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """Intersection over union of matching rows; with ``bound`` = (width, height) both boxes are
    first clipped to the image."""
    a, b = _matching(boxes, gt)
    if bound is not None:
        a, b = _clip(a, bound), _clip(b, bound)
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def _clip(boxes: np.ndarray, bound: Tuple[float, float]) -> np.ndarray:
    width, height = bound
    x = np.clip(boxes[:, 0], 0, width)
    y = np.clip(boxes[:, 1], 0, height)
    w = np.clip(boxes[:, 2], 0, width - x)
    h = np.clip(boxes[:, 3], 0, height - y)
    return np.stack([x, y, w, h], axis=1)


def _centres(boxes: np.ndarray) -> np.ndarray:
    """Box centres (x, y), pixel-centre convention ``x + (w - 1) / 2``."""
    a = np.array(boxes, dtype=np.float64, ndmin=2)
    return a[:, :2] + (a[:, 2:] - 1) / 2


def center_error(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance between box centres (pixel-centre convention ``x + (w - 1) / 2``)."""
    return np.sqrt(((_centres(boxes) - _centres(gt)) ** 2).sum(axis=1))


def centre_inside(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per frame, whether the centre of ``boxes`` lies inside the ``gt`` box (edges included;
    pixel-centre convention ``x + (w - 1) / 2``): the tracker is on the target, whatever size
    it gives it."""
    b = np.array(gt, dtype=np.float64, ndmin=2)
    centre = _centres(boxes)
    return np.all((centre >= b[:, :2]) & (centre <= b[:, :2] + b[:, 2:] - 1), axis=1)


def normalized_center_error(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre error with both centres divided by the ground-truth width and height (LaSOT,
    TrackingNet)."""
    size = np.array(gt, dtype=np.float64, ndmin=2)[:, 2:]
    return np.sqrt(((_centres(boxes) / size - _centres(gt) / size) ** 2).sum(axis=1))


def success_curve(ious: np.ndarray, bins: int) -> np.ndarray:
    """Share of frames with IoU above each of ``bins`` thresholds evenly spaced on [0, 1]."""
    thresholds = np.linspace(0, 1, bins)
    return (np.asarray(ious, dtype=np.float64)[:, None] > thresholds[None, :]).mean(axis=0)


def precision_curve(errors: np.ndarray, bins: int = CE_BINS,
                    thresholds: Optional[np.ndarray] = None) -> np.ndarray:
    """Share of frames with centre error at most t, for t = 0 .. bins-1 pixels or the given
    ``thresholds``."""
    thresholds = np.arange(bins) if thresholds is None else np.asarray(thresholds)
    return (np.asarray(errors, dtype=np.float64)[:, None] <= thresholds[None, :]).mean(axis=0)


def sequence_fps(times: Optional[np.ndarray]) -> float:
    """Mean per-frame fps of one sequence (frames with a positive time), or -1 without any."""
    if times is None:
        return -1.0
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    times = times[np.isfinite(times) & (times > 0)]
    return float(np.mean(1.0 / times)) if len(times) else -1.0


def otb_sequence(boxes: np.ndarray, gt: np.ndarray) -> Dict[str, object]:
    """OTB / UAV123 curves and scores of one sequence."""
    boxes = np.array(boxes, dtype=np.float64, ndmin=2)
    gt = np.array(gt, dtype=np.float64, ndmin=2)
    if boxes.shape != gt.shape:
        raise ValueError(f"{len(boxes)} result boxes for {len(gt)} ground-truth frames")
    boxes[0] = gt[0]
    valid = ~np.any(np.isnan(gt), axis=1)
    succ = success_curve(iou(boxes[valid], gt[valid]), OTB_IOU_BINS)
    prec = precision_curve(center_error(boxes[valid], gt[valid]))
    return {"success_curve": succ, "precision_curve": prec, **otb_scores(succ, prec)}


def otb_scores(succ: np.ndarray, prec: np.ndarray) -> Dict[str, float]:
    """Success AUC, precision at 20 px and SR0.5 from a success and a precision curve."""
    return {"success_auc": float(np.mean(succ)),
            "precision_20": float(prec[PRECISION_PX]),
            "sr_50": float(succ[OTB_IOU_BINS // 2])}


def otb_overall(per_sequence: Sequence[Dict[str, object]],
                fps: Iterable[float]) -> Dict[str, object]:
    """Dataset scores: curves averaged over sequences; fps averaged over timed sequences."""
    succ = np.mean([s["success_curve"] for s in per_sequence], axis=0)
    prec = np.mean([s["precision_curve"] for s in per_sequence], axis=0)
    speeds = [f for f in fps if f > 0]
    return {"success_curve": succ, "precision_curve": prec, **otb_scores(succ, prec),
            "fps": float(np.mean(speeds)) if speeds else -1.0}


def lasot_sequence(boxes: np.ndarray, gt: np.ndarray, visible: np.ndarray) -> Dict[str, object]:
    """LaSOT curves and scores of one sequence (``visible``: the target is in view)."""
    boxes = np.array(boxes, dtype=np.float64, ndmin=2)
    gt = np.array(gt, dtype=np.float64, ndmin=2)
    if boxes.shape != gt.shape:
        raise ValueError(f"{len(boxes)} result boxes for {len(gt)} ground-truth frames")
    for i in range(1, len(boxes)):
        broken = not np.all(np.isfinite(boxes[i])) or boxes[i, 2] <= 0 or boxes[i, 3] <= 0
        if broken and not np.any(np.isnan(gt[i])):
            boxes[i] = boxes[i - 1]
    boxes[0] = gt[0]
    valid = np.asarray(visible, dtype=bool) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    ious = np.full(len(gt), -1.0)
    errors = np.full(len(gt), np.inf)
    norm_errors = np.full(len(gt), np.inf)
    ious[valid] = iou(boxes[valid], gt[valid])
    errors[valid] = center_error(boxes[valid], gt[valid])
    norm_errors[valid] = normalized_center_error(boxes[valid], gt[valid])
    succ = success_curve(ious, OTB_IOU_BINS)
    prec = precision_curve(errors)
    norm = precision_curve(norm_errors, thresholds=NORM_THRESHOLDS)
    return {"success_curve": succ, "precision_curve": prec, "norm_precision_curve": norm,
            **lasot_scores(succ, prec, norm)}


def lasot_scores(succ: np.ndarray, prec: np.ndarray, norm: np.ndarray) -> Dict[str, float]:
    """Success AUC, precision at 20 px and normalised precision AUC from the three curves."""
    return {"success_auc": float(np.mean(succ)), "precision_20": float(prec[PRECISION_PX]),
            "norm_precision": float(np.mean(norm))}


def lasot_overall(per_sequence: Sequence[Dict[str, object]], fps: Iterable[float]
                  ) -> Dict[str, object]:
    """Dataset scores: the three curves averaged over sequences; fps over timed sequences."""
    curves = {key: np.mean([s[key] for s in per_sequence], axis=0)
              for key in ("success_curve", "precision_curve", "norm_precision_curve")}
    speeds = [f for f in fps if f > 0]
    return {**curves, **lasot_scores(*curves.values()),
            "fps": float(np.mean(speeds)) if speeds else -1.0}


def got10k_sequence_ious(boxes: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                         image_size: Tuple[float, float]) -> np.ndarray:
    """IoUs scored by GOT-10k: frames 2..N, target visible, boxes clipped to the image."""
    boxes = np.array(boxes, dtype=np.float64, ndmin=2)
    gt = np.array(gt, dtype=np.float64, ndmin=2)
    if boxes.shape != gt.shape:
        raise ValueError(f"{len(boxes)} result boxes for {len(gt)} ground-truth frames")
    ious = iou(boxes[1:], gt[1:], bound=image_size)
    return ious[np.asarray(visible, dtype=bool)[1:]]


def got10k_scores(ious: np.ndarray) -> Dict[str, object]:
    """AO, SR0.5, SR0.75 and the 101-point success curve of a set of IoUs."""
    ious = np.asarray(ious, dtype=np.float64)
    succ = success_curve(ious, GOT_IOU_BINS)
    return {"success_curve": succ, "ao": float(np.mean(ious)),
            "sr_50": float(np.mean(ious > 0.5)), "sr_75": float(succ[75])}


def got10k_overall(ious: Sequence[np.ndarray],
                   times: Sequence[Optional[np.ndarray]]) -> Dict[str, object]:
    """Dataset scores from per-sequence IoUs (pooled) and per-sequence frame times (pooled)."""
    pooled = [np.asarray(t, dtype=np.float64).reshape(-1) for t in times if t is not None]
    all_times = np.concatenate(pooled) if pooled else np.zeros(0)
    return {**got10k_scores(np.concatenate(list(ious))), "fps": sequence_fps(all_times)}
