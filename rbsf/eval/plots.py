"""Success and precision plots in the OTB toolkit's style (every tracker, score in the legend) and
VOT's accuracy-robustness plot."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rbsf.files import atomic_open  # noqa: E402

LINE_STYLES = ("-", "--", "-.", ":")


def _save(fig, ax, path: Path) -> None:
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", bbox_inches="tight", dpi=150)
    plt.close(fig)


def _plot(curves: Dict[str, np.ndarray], scores: Dict[str, float], thresholds: np.ndarray,
          xlabel: str, ylabel: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    order = sorted(curves, key=lambda name: scores[name], reverse=True)
    for index, name in enumerate(order):
        ax.plot(thresholds, curves[name], LINE_STYLES[(index // 10) % len(LINE_STYLES)],
                linewidth=2, label=f"{name} [{scores[name]:.3f}]")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(thresholds[0], thresholds[-1]),
           ylim=(0, 1.0))
    ax.grid(True, linestyle=":")
    _save(fig, ax, path)


def success_plot(curves: Dict[str, np.ndarray], scores: Dict[str, float], dataset: str,
                 score_name: str, path: Path) -> None:
    """Success rate against overlap threshold; legend ``name [score]`` sorted by score."""
    thresholds = np.linspace(0, 1, len(next(iter(curves.values()))))
    _plot(curves, scores, thresholds, "Overlap threshold", "Success rate",
          f"Success plots of OPE on {dataset} ({score_name})", path)


def precision_plot(curves: Dict[str, np.ndarray], scores: Dict[str, float], dataset: str,
                   path: Path) -> None:
    """Precision against location-error threshold (pixels); legend precision at 20 px."""
    thresholds = np.arange(len(next(iter(curves.values()))))
    _plot(curves, scores, thresholds, "Location error threshold (pixels)", "Precision",
          f"Precision plots of OPE on {dataset} (precision at 20 px)", path)


def norm_precision_plot(curves: Dict[str, np.ndarray], scores: Dict[str, float], dataset: str,
                        path: Path) -> None:
    """Precision against the normalised location-error threshold (0 to 0.5); legend its AUC."""
    thresholds = np.linspace(0, 0.5, len(next(iter(curves.values()))))
    _plot(curves, scores, thresholds, "Normalized location error threshold", "Precision",
          f"Normalized precision plots of OPE on {dataset} (AUC)", path)


def ar_plot(accuracy: Dict[str, float], robustness: Dict[str, float], dataset: str,
            path: Path) -> None:
    """VOT's accuracy-robustness plot: one point per tracker, fewer failures to the right."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    order = sorted(accuracy, key=lambda name: accuracy[name], reverse=True)
    for name in order:
        ax.plot(robustness[name], accuracy[name], "o", markersize=9,
                label=f"{name} [A {accuracy[name]:.3f}, R {robustness[name]:.1f}]")
    most = max(max(robustness.values()), 1.0)
    ax.set(xlabel="Robustness (weighted failures)", ylabel="Accuracy", ylim=(0, 1.0),
           xlim=(most * 1.05, 0), title=f"AR plot of the supervised experiment on {dataset}")
    ax.grid(True, linestyle=":")
    _save(fig, ax, path)


def outcome_plot(counts: Dict[str, Dict[str, int]], outcomes, title: str, path: Path) -> None:
    """One horizontal bar per tracker, split into the number of sequences of each outcome."""
    names = list(counts)
    fig, ax = plt.subplots(figsize=(7.2, 0.5 * len(names) + 1.6))
    left = np.zeros(len(names))
    for outcome in outcomes:
        values = np.array([counts[name][outcome] for name in names], float)
        ax.barh(names, values, left=left, label=outcome)
        left += values
    ax.invert_yaxis()
    ax.set(xlabel="sequences", title=title)
    ax.grid(True, axis="x", linestyle=":")
    _save(fig, ax, path)
