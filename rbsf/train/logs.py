"""Training logs: one CSV row per step, and the loss curves drawn from it."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rbsf.files import atomic_open  # noqa: E402

# the tracking trainer's columns (rbsf.train.tracking); other tasks name their own
COLUMNS = ["step", "epoch", "L_S", "L_kernel", "L_adv", "D_loss", "L_distill", "lr", "lambda1",
           "lambda2", "response_std", "grad_conv1", "grad_conv2", "grad_conv3", "grad_conv4",
           "grad_conv5", "sign_flips", "elapsed_s"]


class CsvLog:
    """Append-only CSV log with the given columns that can be cut back to a resumed step."""

    def __init__(self, path: Path, columns: Sequence[str] = COLUMNS):
        self.path = Path(path)
        self.columns = list(columns)

    def truncate_after(self, step: int) -> None:
        """Drop rows with step > ``step`` (left behind by a run that stopped after its save)."""
        rows = [r for r in self.read() if int(r["step"]) <= step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: Dict[str, float]) -> None:
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(row.get(k, "")) for k in self.columns})

    def read(self) -> List[Dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as handle:
            return list(csv.DictReader(handle))


def training_seconds(log: Path) -> Optional[float]:
    """Wall seconds of the training in ``log`` (a step log with ``elapsed_s``): each process
    counts ``elapsed_s`` from its own start, so the time is the sum of the last value before
    each restart. None when the log is missing or empty."""
    elapsed = [float(row["elapsed_s"]) for row in CsvLog(log).read()]
    ends = [a for a, b in zip(elapsed, elapsed[1:]) if b < a] + elapsed[-1:]
    return sum(ends) if elapsed else None


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def plot_losses(log_path: Path, out_path: Path, title: str) -> None:
    """Loss curves (task, kernel, adversarial, discriminator, and distillation when it was on),
    raw and smoothed, like Fig. 2."""
    rows = CsvLog(log_path).read()
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    panels = [(k, [float(r[k]) for r in rows])
              for k in ("L_S", "L_kernel", "L_adv", "D_loss", "L_distill")
              if any(r.get(k) not in (None, "", "0") for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels):
        ax.plot(steps, values, color="tab:blue", alpha=0.3, linewidth=0.8, label="per step")
        ax.plot(steps, _smooth(values), color="tab:blue", linewidth=2, label="moving average")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(out_path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def _smooth(values: List[float], window: int = 25) -> List[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
