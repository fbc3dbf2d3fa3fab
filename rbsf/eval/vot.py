"""Scores of VOT's supervised experiment, as the got10k toolkit's ``ExperimentVOT.report``
defines them (the records are written by ``rbsf.eval.runner.run_supervised``).

* Frame IoU: the polygon IoU of the record's box with the ground-truth region, both clipped to
  the first frame's size; NaN where the record is not a box (initialisation, failure, skipped)
  and in the ``BURNIN`` frames from each initialisation. Per frame, IoUs and failures are
  averaged over the repetitions.
* Tags: a frame carries each of its sequence's ``*.tag`` / ``*.label`` flags; ``empty`` is a
  frame with none (practical-value files aside). For each of ``TAGS`` + ``empty``: the mean IoU
  of its frames over the whole data set (0 without any) and its number of failures; both are
  weighted by the tag's share of tagged frames. Accuracy = the weighted mean IoU, robustness =
  the weighted failure count (not VOT's EAO, which the toolkit does not implement).
* Speed: the mean per-frame fps over every timed frame of every repetition (frames skipped
  after a failure carry no time).
"""
from __future__ import annotations

import warnings
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
from got10k.utils.metrics import poly_iou

BURNIN = 10
TAGS = ("camera_motion", "illum_change", "occlusion", "size_change", "motion_change")


def parse_records(text: str) -> List[List[float]]:
    """Record lines (``1``, ``2``, ``0`` or ``x,y,w,h``) as lists of numbers."""
    return [[float(v) for v in line.split(",")] for line in text.strip().split("\n")]


def frame_ious(records: Sequence[Sequence[float]], regions: np.ndarray,
               bound: Tuple[int, int], burnin: int = BURNIN) -> np.ndarray:
    """IoU of every frame of one repetition; NaN where not scored."""
    skipped = np.zeros(len(records), dtype=bool)
    for index, record in enumerate(records):
        if list(record) == [1.0]:
            skipped[index:index + burnin] = True
    ious = np.full(len(records), np.nan)
    for index, (record, region) in enumerate(zip(records, regions)):
        if len(record) > 1 and not skipped[index]:
            ious[index] = poly_iou(np.asarray(record, dtype=np.float64),
                                   np.asarray(region, dtype=np.float64), bound)[0]
    return ious


def failures(records: Sequence[Sequence[float]]) -> np.ndarray:
    """1 where the repetition failed, else 0."""
    return np.array([float(list(r) == [2.0]) for r in records])


def _nanmean(values: np.ndarray, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(values, axis=axis)


def sequence_frames(repetitions: Sequence[Sequence[Sequence[float]]], regions: np.ndarray,
                    bound: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Per-frame IoU and failure count of one sequence, averaged over its repetitions."""
    ious = np.stack([frame_ious(r, regions, bound) for r in repetitions])
    fails = np.stack([failures(r) for r in repetitions])
    return _nanmean(ious, axis=0), fails.mean(axis=0)


def tag_masks(tags: Mapping[str, np.ndarray], count: int) -> np.ndarray:
    """(len(TAGS) + 1) x count: the frames of each tag of ``TAGS``, then the untagged ones."""
    masks = np.zeros((len(TAGS) + 1, count), dtype=bool)
    for row, tag in enumerate(TAGS):
        if tag in tags:
            masks[row] = np.asarray(tags[tag]) != 0
    flagged = [np.asarray(v) != 0 for k, v in tags.items() if "practical" not in k]
    masks[-1] = ~np.logical_or.reduce(flagged, axis=0) if flagged else True
    return masks


def sequence_scores(ious: np.ndarray, fails: np.ndarray) -> Dict[str, float]:
    """One sequence: its mean IoU (0 without a scored frame) and failures."""
    accuracy = _nanmean(ious)
    return {"accuracy": 0.0 if np.isnan(accuracy) else float(accuracy),
            "failures": float(np.sum(fails))}


def overall(ious: Sequence[np.ndarray], fails: Sequence[np.ndarray], masks: Sequence[np.ndarray],
            times: Sequence[np.ndarray]) -> Dict[str, object]:
    """Accuracy, robustness, failures and fps of every sequence together (arrays per sequence:
    per-frame IoUs, failures, tag masks, and the times of all repetitions)."""
    ious, fails = np.concatenate(list(ious)), np.concatenate(list(fails))
    masks = np.concatenate(list(masks), axis=1)
    tag_ious = np.array([_nanmean(ious[m]) if m.any() else np.nan for m in masks])
    tag_ious[np.isnan(tag_ious)] = 0.0
    tag_failures = np.array([np.nansum(fails[m]) for m in masks])
    weights = masks.sum(axis=1) / masks.sum()
    pooled = np.concatenate([np.asarray(t, dtype=np.float64).reshape(-1) for t in times])
    pooled = pooled[np.isfinite(pooled) & (pooled > 0)]
    return {"accuracy": float(np.sum(tag_ious * weights)),
            "robustness": float(np.sum(tag_failures * weights)),
            "failures": float(np.sum(fails)),
            "fps": float(np.mean(1.0 / pooled)) if len(pooled) else -1.0,
            "tags": {tag: {"accuracy": float(a), "failures": float(f), "frames": int(m.sum())}
                     for tag, a, f, m in zip(TAGS + ("empty",), tag_ious, tag_failures, masks)}}
