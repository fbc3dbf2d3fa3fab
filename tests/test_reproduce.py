"""tools/reproduce.py: summary logic on hand-made numbers, photo split, compact weights, and the
--quick path end to end (data, six trainings, evaluation, tables, plots, shipped weights, a given teacher)."""
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import assert_clear_error

from experiments.reproduce import (RUNS, ReproduceError, aggregate, compact_payload, gap_closed,
                                   markdown, markdown_table, mean_std, scale_budget, split_photos)
from rbsf.binary import binary_convs
from rbsf.checkpoint import load_model, model_payload
from rbsf.data.synthetic import DEFAULT_PHOTOS
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from rbsf.train import preset
from tools import reproduce as tool
from tools.cli import run_tool

REPO = Path(__file__).resolve().parents[1]


def _seed(seed, success, precision, pairs=80, seconds=60.0):
    """A per-seed record as ``reproduce`` builds it, from per-run success / precision (pair
    loss 1 - success, feature correlation = precision)."""
    scores, budgets = {}, {}
    for run in RUNS:
        scores[run.id] = {"success_auc": success[run.id], "precision_20": precision[run.id],
                          "sr_50": success[run.id], "fps": 10.0,
                          "pair_loss": 1 - success[run.id],
                          "teacher_similarity": precision[run.id]}
        budgets[run.id] = {"checkpoint": f"seed{seed}/{run.id}.pt", "pairs": pairs,
                           "steps": pairs // 8, "batch_size": 8, "seconds": seconds}
    return {"seed": seed, "scores": scores, "budgets": budgets}


def test_mean_std_and_gap_closed_by_hand():
    stat = mean_std([0.5, 0.7])
    assert stat["mean"] == pytest.approx(0.6)
    assert stat["std"] == pytest.approx(np.sqrt(0.02))   # sample std: sqrt(2 * 0.1^2 / 1)
    assert mean_std([0.4])["std"] == 0.0
    assert gap_closed(0.6, 0.4, 0.55) == pytest.approx(0.75)
    assert gap_closed(0.6, 0.4, 0.3) == pytest.approx(-0.5)
    assert gap_closed(0.6, 0.4, 0.7) == pytest.approx(1.5)
    assert gap_closed(0.4, 0.4, 0.5) is None                 # no gap
    assert gap_closed(0.3, 0.4, 0.5) is None                 # XNOR above FP: nothing to close
    assert gap_closed(0.602, 0.394, 0.572) == pytest.approx(0.8558, abs=1e-4)   # paper, OTB100
    # lower is better (a loss): FP 0.3, XNOR 0.5, RB-SF 0.35 closes 75 %
    assert gap_closed(0.3, 0.5, 0.35, higher_is_better=False) == pytest.approx(0.75)
    assert gap_closed(0.5, 0.3, 0.35, higher_is_better=False) is None


def test_aggregate_and_table_on_hand_made_numbers():
    runs = [r.id for r in RUNS]   # teacher, xnor, rbconv_only, gan, rbsf, rbsf_ns
    assert len(runs) == 6
    seeds = [_seed(0, dict(zip(runs, [0.60, 0.40, 0.45, 0.50, 0.55, 0.50])),
                   dict(zip(runs, [0.80, 0.50, 0.60, 0.65, 0.70, 0.65])), seconds=60),
             _seed(1, dict(zip(runs, [0.62, 0.42, 0.47, 0.52, 0.60, 0.52])),
                   dict(zip(runs, [0.82, 0.52, 0.60, 0.66, 0.72, 0.67])), seconds=120)]
    summary = aggregate(seeds)
    teacher = summary["models"]["teacher"]
    assert teacher["success_auc"]["mean"] == pytest.approx(0.61)
    assert teacher["success_auc"]["std"] == pytest.approx(np.std([0.60, 0.62], ddof=1))
    assert teacher["budget"]["minutes"]["mean"] == pytest.approx(1.5)
    assert teacher["budget"]["pairs"]["mean"] == 80
    assert sorted(summary["gap_closed"]) == ["gan", "rbconv_only", "rbsf", "rbsf_ns"]
    gap = summary["gap_closed"]["rbsf"]["success_auc"]
    assert gap["per_seed"] == pytest.approx([0.75, 0.9])
    assert gap["of_means"] == pytest.approx((0.575 - 0.41) / (0.61 - 0.41))
    loss_gap = summary["gap_closed"]["rbsf"]["pair_loss"]      # lower is better: same shares
    assert loss_gap["per_seed"] == pytest.approx([0.75, 0.9])
    assert summary["models"]["rbsf_ns"]["teacher_similarity"]["mean"] == pytest.approx(0.66)
    table = markdown_table(summary)
    lines = table.splitlines()
    assert len(lines) == 2 + len(RUNS)
    assert ("| SiamFC teacher (full precision) | 0.610 ± 0.014 | 0.810 ± 0.014 | 0.610 ± 0.014 "
            "| 0.390 ± 0.014 | 0.810 ± 0.014 |") in table
    assert "80 (10 × 8)" in lines[2] and "1.5 ± 0.7" in lines[2]
    summary.update(preset="cpu", quick=False, data={
        "test_sequences": 8, "test_frames": 80, "frame_size": [480, 360],
        "test_photos": ["a.jpg", "b.jpg", "c.jpg"], "train_sequences": 24, "train_frames": 60,
        "test_pairs": 256,
        "train_photos": ["d.jpg", "e.jpg"]})
    text = markdown(summary)
    assert "synthetic sequences from real photos, small scale, not GOT-10k" in text
    assert "Preset `cpu`, trained and tracked on `cpu`" in text
    assert "on 256 fixed training-style pairs" in text
    # (0.575 - 0.41) / (0.61 - 0.41) = 82.5 %, (0.71 - 0.51) / (0.81 - 0.51) = 67 %
    assert "| RB-SF: + BN update (full) | 82 % | 67 % | 82 % |" in text
    summary.update(preset="gpu", pairs_scale=0.5, device="cuda")
    assert ("Preset `gpu` with pairs per epoch × 0.5, trained and tracked on `cuda`"
            in markdown(summary))
    assert "mean ± sample std over 2 seeds" in text
    assert "success 82 %" in text                      # (0.575 - 0.41) / (0.61 - 0.41)
    assert "| OTB100 | success | 0.602 | 0.394 | 0.572 |" in text   # the paper's Table 5


def test_split_photos_holds_out_a_fixed_disjoint_set(tmp_path):
    train, test = split_photos(None, 3, seed=0)
    assert len(test) == 3 and not set(train) & set(test)
    assert sorted(train + test) == sorted(p.name for p in DEFAULT_PHOTOS.iterdir()
                                          if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
    assert split_photos(None, 3, seed=0) == (train, test)
    assert split_photos(None, 3, seed=1)[1] != test or len(train) < 3
    for name in sorted(train)[:2] + sorted(test)[:2]:
        shutil.copy(DEFAULT_PHOTOS / name, tmp_path / name)
    with pytest.raises(ReproduceError, match="need at least 5 photos"):
        split_photos(str(tmp_path), 3, seed=0)


def _responses(net, path):
    torch.manual_seed(1)
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        return net(z, x), load_model(path)(z, x)


def test_compact_payload_keeps_binary_nets_exact(tmp_path):
    torch.manual_seed(0)
    net = SiamFCNet("rbconv", width=0.25).eval()
    conv = binary_convs(net)[0][1]
    with torch.no_grad():
        conv.weight.view(-1)[:3] = torch.tensor([-1e-9, 1e-9, -3e-8])  # below float16's range
    full, small = tmp_path / "full.pt", tmp_path / "small.pt"
    save_atomic(model_payload(net), full)
    payload = compact_payload(net, stage="rbsf")
    save_atomic(payload, small)
    assert small.stat().st_size < 0.6 * full.stat().st_size
    binary = {f"{name}.weight" for name, _ in binary_convs(net)}
    for key, value in payload["model"].items():
        if value.is_floating_point():
            assert value.dtype == (torch.float16 if key in binary else torch.float32), key
    loaded = load_model(small)
    assert all(v.dtype != torch.float16 for v in loaded.state_dict().values())
    for (_, a), (_, b) in zip(binary_convs(net), binary_convs(loaded)):
        assert torch.equal(a.weight >= 0, b.weight >= 0)
    ref, got = _responses(net, small)
    assert torch.equal(ref, got)


def test_compact_payload_full_precision_is_all_float16_and_close(tmp_path):
    torch.manual_seed(0)
    net = SiamFCNet("fp", width=0.25).eval()
    payload = compact_payload(net)
    assert all(v.dtype == torch.float16 for v in payload["model"].values()
               if v.is_floating_point())
    save_atomic(payload, tmp_path / "fp.pt")
    ref, got = _responses(net, tmp_path / "fp.pt")
    assert (ref - got).abs().max() < 0.01 * (ref.max() - ref.min())


@pytest.fixture
def cli(capsys):
    """The tool's ``run`` in this process, with its exit code and outputs."""
    def call(*args):
        code = run_tool(tool.main, [str(a) for a in args])
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return call


def test_bad_input_is_one_clear_line(cli, tmp_path):
    assert_clear_error(cli("--quick", "--out", tmp_path / "a", "--seeds", "0"), "--seeds")
    assert_clear_error(cli("--quick", "--out", tmp_path / "b", "--photos", tmp_path / "none"),
                        "does not exist")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    assert_clear_error(cli("--quick", "--out", tmp_path / "c"), "not empty")
    assert_clear_error(cli("--quick", "--out", tmp_path / "d", "--pairs-scale", "0"),
                        "--pairs-scale", "> 0")
    assert_clear_error(cli("--quick", "--out", tmp_path / "e", "--teacher", tmp_path / "no.pt"),
                       "checkpoint not found")
    assert_clear_error(cli("--quick", "--out", tmp_path / "f", "--teacher",
                           REPO / "data" / "weights" / "xnor.pt"), "full precision")
    assert_clear_error(cli("--quick", "--out", tmp_path / "g", "--teacher",
                           REPO / "data" / "weights" / "siamfc.pt"), "width")


def test_unwritable_outputs_are_refused_before_any_work(cli, tmp_path):
    """They used to end in a traceback; --ship-weights's only after the whole run."""
    (tmp_path / "file").write_text("mine")
    assert_clear_error(cli("--quick", "--out", tmp_path / "file"), "--out", "is a file")
    assert_clear_error(cli("--quick", "--out", tmp_path / "file" / "run"), "--out",
                       "is a file, not a folder")
    assert_clear_error(cli("--quick", "--out", tmp_path / "run", "--ship-weights",
                           "--weights-dir", tmp_path / "file"), "--weights-dir", "is a file")
    weights = tmp_path / "weights"
    (weights / "siamfc.pt").mkdir(parents=True)
    assert_clear_error(cli("--quick", "--out", tmp_path / "run", "--ship-weights",
                           "--weights-dir", weights), "siamfc.pt is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "weights"]
    assert (tmp_path / "file").read_text() == "mine"


def test_shipping_onto_the_given_teacher_is_refused(cli, tmp_path):
    """--ship-weights writes siamfc.pt into --weights-dir: never over the --teacher it reads."""
    weights = tmp_path / "weights"
    save_atomic(model_payload(SiamFCNet("fp", width=preset("smoke").width)), weights / "siamfc.pt")
    before = (weights / "siamfc.pt").read_bytes()
    assert_clear_error(cli("--quick", "--out", tmp_path / "run", "--teacher", weights / "siamfc.pt",
                           "--ship-weights", "--weights-dir", weights), "is the --teacher")
    assert (weights / "siamfc.pt").read_bytes() == before
    assert not (tmp_path / "run").exists()


def test_pairs_scale_keeps_whole_batches_and_epochs():
    config = preset("gpu")
    scale_budget(config, 0.3)
    for name, schedule in config.stages.items():
        assert schedule.epochs == preset("gpu").stage(name).epochs
        assert schedule.pairs_per_epoch % config.batch_size == 0
        assert schedule.pairs_per_epoch == pytest.approx(
            0.3 * preset("gpu").stage(name).pairs_per_epoch, abs=config.batch_size / 2)
    tiny = preset("smoke")
    scale_budget(tiny, 1e-6)
    assert all(s.pairs_per_epoch == tiny.batch_size for s in tiny.stages.values())


def test_quick_reproduction_end_to_end(cli, tmp_path):
    out, weights = tmp_path / "run", tmp_path / "weights"
    proc = cli("--quick", "--out", out, "--ship-weights", "--weights-dir", weights)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["models"]) == [r.id for r in RUNS]
    for model in summary["models"].values():
        for key in ("success_auc", "precision_20", "sr_50"):
            assert 0.0 <= model[key]["mean"] <= 1.0
        assert model["budget"]["pairs"]["mean"] == model["budget"]["steps"]["mean"] * 4 > 0
        assert model["budget"]["minutes"]["mean"] > 0
        assert -1 <= model["teacher_similarity"]["mean"] <= 1
    assert summary["models"]["teacher"]["teacher_similarity"]["mean"] == pytest.approx(1, abs=1e-4)
    pair_scores = json.loads((out / "seed0" / "pair_scores.json").read_text())
    assert pair_scores["rbsf_ns"]["per_layer"]
    # the table's pair scores are the seed's own scores, not a default or another run's
    for run_id, model in summary["models"].items():
        assert model["pair_loss"]["values"] == [pair_scores[run_id]["pair_loss"]]
    # the held-out set uses only photos that training never saw
    data = summary["data"]
    assert (len(data["test_photos"]) == 3
            and not set(data["test_photos"]) & set(data["train_photos"]))
    # the scores are exactly those of the evaluation library's report of the seed
    report = json.loads((out / "seed0" / "report" / "summary.json").read_text())
    for run in RUNS:
        assert summary["models"][run.id]["success_auc"]["mean"] == \
            report["trackers"][run.name]["success_auc"]
    table = (out / "results.md").read_text()
    assert "not GOT-10k" in table and all(run.row in table for run in RUNS)
    for name in ("success_plot.png", "precision_plot.png"):
        assert (out / name).stat().st_size > 0
    # ablation flags reached the trainings
    ckpt = torch.load(out / "seed0" / "train" / "rbconv_only" / "rbsf" / "last.pt",
                      weights_only=False)
    assert (ckpt["train_config"]["gan"], ckpt["train_config"]["bn_update"]) == (False, False)
    ckpt = torch.load(out / "seed0" / "train" / "rbsf_ns" / "rbsf" / "last.pt", weights_only=False)
    assert ckpt["train_config"]["gan_loss"] == "nonsaturating"
    # shipped weights: compact, loadable, described
    facts = json.loads((weights / "weights.json").read_text())
    assert sorted(facts["models"]) == ["rbsf.pt", "siamfc.pt", "xnor.pt"]
    assert (facts["pairs_scale"], facts["device"]) == (1.0, "cpu")
    kinds = {name: load_model(weights / name).kind for name in facts["models"]}
    assert kinds == {"siamfc.pt": "fp", "xnor.pt": "xnor", "rbsf.pt": "rbconv"}
    assert facts["models"]["rbsf.pt"]["scores"]["success_auc"] == \
        summary["models"]["rbsf"]["success_auc"]["mean"]
    # reruns: refused without --resume, reuse everything with it, refuse other settings
    assert_clear_error(cli("--quick", "--out", out), "--resume")
    before = {p: p.stat().st_mtime_ns for p in out.glob("seed0/train/*/*/last.pt")}
    again = cli("--quick", "--out", out, "--resume")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert json.loads((out / "summary.json").read_text())["models"]["rbsf"]["success_auc"] == \
        summary["models"]["rbsf"]["success_auc"]
    assert_clear_error(cli("--quick", "--out", out, "--resume", "--preset", "cpu"), "preset")
    # a given teacher: used as it is (same scores), only the students are trained
    teacher = out / "seed0" / "train" / "teacher" / "teacher" / "last.pt"
    given = cli("--quick", "--out", tmp_path / "given", "--teacher", teacher)
    assert given.returncode == 0, given.stderr
    with_teacher = json.loads((tmp_path / "given" / "summary.json").read_text())
    assert with_teacher["teacher"] == str(teacher)
    assert with_teacher["models"]["teacher"]["budget"]["given"] is True
    assert (with_teacher["models"]["teacher"]["success_auc"]
            == summary["models"]["teacher"]["success_auc"])
    assert not (tmp_path / "given" / "seed0" / "train" / "teacher").exists()
    assert "given (--teacher)" in (tmp_path / "given" / "results.md").read_text()
