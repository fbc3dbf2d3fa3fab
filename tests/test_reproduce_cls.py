"""tools/reproduce_cls.py: the summary on hand-made numbers, and --quick end to end."""
import json

import numpy as np
import pytest
from helpers import assert_clear_error, run_in_process

from experiments.reproduce_cls import RUNS, aggregate, markdown
from tools import reproduce_cls as tool


def seed_record(seed, top1):
    scores = {}
    for run in RUNS:
        history = [{"epoch": e, "train_error": 1 - top1[run.id] + 0.1 / e,
                    "test_error": 1 - top1[run.id]} for e in (1, 2)]
        scores[run.id] = {"top1": top1[run.id], "top5": 1.0, "recalibrated_top1": 0.9,
                          "history": history,
                          "budget": {"epochs": 2, "steps": 10, "batch_size": 8,
                                     "images_seen": 80, "seconds": 60.0 * (seed + 1)}}
    return {"seed": seed, "scores": scores}


def test_aggregate_on_hand_made_numbers():
    ids = [r.id for r in RUNS]          # fp, xnor, bireal, rbconv, gan, rbcn
    seeds = [seed_record(0, dict(zip(ids, [0.90, 0.60, 0.70, 0.72, 0.71, 0.80]))),
             seed_record(1, dict(zip(ids, [0.92, 0.62, 0.60, 0.70, 0.75, 0.78])))]
    summary = aggregate(seeds)
    fp = summary["models"]["fp"]["top1"]
    assert fp["mean"] == pytest.approx(0.91) and fp["std"] == pytest.approx(np.std([0.9, 0.92],
                                                                                ddof=1))
    assert summary["models"]["fp"]["budget"]["minutes"]["mean"] == pytest.approx(1.5)
    # paired effects: rbconv - bireal per seed = +0.02, +0.10
    step = summary["ablation_steps"]["rbconv"]
    assert step["values"] == pytest.approx([0.02, 0.10])
    assert summary["ablation_steps"]["gan"]["values"] == pytest.approx([-0.01, 0.05])
    orderings = {o["claim"]: o for o in summary["orderings"]}
    assert orderings["bireal > xnor"]["seeds_holding"] == 1          # 0.70 > 0.60, 0.60 < 0.62
    assert orderings["bireal > xnor"]["in_means"] is True            # 0.65 > 0.61
    assert orderings["fp >= rbcn"]["seeds_holding"] == 2
    assert summary["curves"]["xnor"][0]["test_error"] == pytest.approx(0.39)
    text = markdown({**summary, "plan": {"dataset": "mnist", "preset": "cpu", "seeds": 2,
                                         "widths": [16, 16, 32, 64], "train_images": 4000,
                                         "test_images": 1000}})
    assert "| + RBConv (kernel loss) | 71.00 ± 1.41 | +6.00 ± 5.66 |" in text
    assert "| bireal > xnor | 1 of 2 | yes |" in text


def test_quick_run_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "repro"
    result = run_in_process(tool.main, ["--quick", "--threads", "1", "--out", out], capsys)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {r.id for r in RUNS}
    assert all(0 <= m["top1"]["mean"] <= 1 for m in summary["models"].values())
    assert (out / "fig2_errors.png").stat().st_size > 0
    assert "Table 2 style" in (out / "results.md").read_text()
    assert_clear_error(run_in_process(tool.main, ["--quick", "--out", out], capsys), "--resume")
    before = (out / "seed0" / "rbcn" / "rbcn" / "last.pt").read_bytes()
    again = run_in_process(tool.main, ["--quick", "--out", out, "--resume"], capsys)
    assert again.returncode == 0, again.stderr                     # trainings reused
    assert (out / "seed0" / "rbcn" / "rbcn" / "last.pt").read_bytes() == before
