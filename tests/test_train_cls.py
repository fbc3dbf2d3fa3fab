"""tools/train_cls.py and the classification task of the trainer core: the tool end to end on
the shipped real digits, bad input as one line, teachers never mixed up, bit-exact resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import assert_clear_error, csv_rows, ctrl_c_after_steps, run_in_process

from rbsf.checkpoint import load_checkpoint
from rbsf.errors import Interrupted
from rbsf.train.classification import (ClassificationTask, ClsData, cls_stages, load_classifier,
                                       train_cls_chain)
from rbsf.train.config import cls_preset
from rbsf.train.trainer import TrainingError
from tools import train_cls

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--preset", "smoke", "--train-samples", "128"]


def smoke(**values):
    config = cls_preset("smoke")
    config.train_samples, config.test_samples, config.eval_train_samples = 128, 64, 64
    for key, value in values.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="module")
def data():
    return ClsData(smoke(), str(ROOT / "data" / "mnist"))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("teacher")
    return train_cls_chain(smoke(), ["fp"], data, out, show_progress=False)["fp"]


def test_tool_trains_teacher_then_rbcn_and_writes_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    result = run_in_process(train_cls.main, [*SMALL, "--out", out, "--epochs", "2"], capsys)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "rbcn" and metrics["dataset"] == "mnist"
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 1 and metrics["test_images"] == 128
    assert set(metrics["stages"]) == {"fp", "rbcn"}
    assert "| RBCN |" in (out / "report.md").read_text()
    for stage in ("fp", "rbcn"):
        epochs = csv_rows(out / stage / "epochs.csv")
        assert [int(r["epoch"]) for r in epochs] == [1, 2]
        assert (out / stage / "errors.png").stat().st_size > 0
    rows = csv_rows(out / "rbcn" / "log.csv")
    assert all(float(r["L_kernel"]) > 0 and float(r["D_loss"]) > 0 for r in rows)
    saved = load_checkpoint(out / "rbcn" / "last.pt")
    assert saved["finished"] and saved["budget"]["images_seen"] == 2 * 128
    assert load_classifier(out / "rbcn" / "last.pt").kind == "rbconv"


@pytest.mark.parametrize("options, phrase", [
    (["--dataset", "cifar10"], "needs --root"),
    (["--dataset", "cifar100", "--root", "data/mnist"], "cifar-100-python"),
    (["--dataset", "imagenet", "--root", "data/mnist"], "train/<wnid>"),
    (["--root", "nowhere"], "nowhere is not a folder"),
    (["--stages", "32-32-64"], "--stages"), (["--epochs", "0"], "--epochs"),
    (["--lr", "-1"], "--lr"), (["--kind", "ternary"], "--kind"),
    (["--lambda-distill", "-0.5"], "--lambda-distill"),
    (["--kind", "xnor", "--teacher", "missing.pt"], "missing.pt does not exist"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, capsys, options, phrase):
    out = tmp_path / "run"
    assert_clear_error(run_in_process(train_cls.main, [*SMALL, "--out", out, *options],
                                      capsys), phrase)
    assert not out.exists()


def test_malformed_data_set_is_one_line(tmp_path, capsys):
    root = tmp_path / "mnist"
    root.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (root / name).write_bytes(b"\x00\x00\x08\x03garbage")
    result = run_in_process(train_cls.main, [*SMALL, "--root", root, "--out", tmp_path / "o"],
                            capsys)
    assert_clear_error(result, "train-images-idx3-ubyte", "re-copy")


def test_teachers_are_checked_and_never_swapped(tmp_path, capsys, teacher):
    other = tmp_path / "other"
    result = run_in_process(train_cls.main, [*SMALL, "--kind", "xnor", "--teacher", teacher,
                                             "--stages", "8-8-16-32", "--out", other], capsys)
    assert_clear_error(result, "stages [8, 8, 16, 16] (this run: [8, 8, 16, 32])", "--stages")
    out = tmp_path / "run"
    args = [*SMALL, "--kind", "xnor", "--epochs", "1", "--out", out]
    assert run_in_process(train_cls.main, [*args, "--teacher", teacher], capsys).returncode == 0
    assert load_checkpoint(out / "fp" / "last.pt")["source"] == str(teacher)
    held = (out / "fp" / "last.pt").read_bytes()
    student = load_checkpoint(out / "xnor" / "last.pt")["model"]
    stored = load_checkpoint(teacher)["model"]
    assert torch.allclose(student["units.5.conv.weight"], stored["units.5.conv.weight"],
                          atol=0.05)               # started from the teacher, one epoch on
    fresh = tmp_path / "fresh.pt"
    model = load_checkpoint(teacher)
    model["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in model["model"].items()}
    torch.save(model, fresh)
    result = run_in_process(train_cls.main, [*args, "--teacher", fresh, "--resume"], capsys)
    assert_clear_error(result, "already holds a teacher", "another --out")
    assert (out / "fp" / "last.pt").read_bytes() == held


@pytest.mark.parametrize("stage", ["fp", "rbcn"])
def test_run_killed_mid_epoch_and_resumed_ends_with_the_same_weights(tmp_path, data, teacher,
                                                                     stage):
    def config():
        c = smoke()
        c.stage(stage).epochs = 2
        return c

    given = None if stage == "fp" else teacher
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train_cls_chain(config(), [stage], data, straight, teacher_path=given, show_progress=False)
    with pytest.raises(Interrupted):          # 4 batches an epoch: step 6 is inside epoch 2
        train_cls_chain(config(), [stage], data, broken, teacher_path=given, max_steps=6,
                        show_progress=False)
    stopped = load_checkpoint(broken / stage / "last.pt")
    assert not stopped["finished"] and (stopped["epoch"], stopped["batch"]) == (1, 2)
    with pytest.raises(TrainingError, match="--resume"):
        train_cls_chain(config(), [stage], data, broken, teacher_path=given,
                        show_progress=False)
    train_cls_chain(config(), [stage], data, broken, teacher_path=given, resume=True,
                    show_progress=False)
    a = load_checkpoint(straight / stage / "last.pt")
    b = load_checkpoint(broken / stage / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    if stage == "rbcn":
        for key in a["discs"]:
            assert torch.equal(a["discs"][key], b["discs"][key]), key
    assert a["history"] == b["history"] and len(a["history"]) == 2
    log_a, log_b = csv_rows(straight / stage / "log.csv"), csv_rows(broken / stage / "log.csv")
    for key in ("step", "L_S", "L_kernel", "L_adv", "D_loss", "batch_top1"):
        assert [r[key] for r in log_a] == [r[key] for r in log_b], key


def test_distillation_is_zero_where_the_class_distributions_agree():
    task = ClassificationTask.__new__(ClassificationTask)   # distill_loss reads no state
    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    assert task.distill_loss(teacher + 7.0, teacher).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.zeros(2, 3)
    p = torch.softmax(teacher, dim=1)
    by_hand = (p * (p.log() - torch.log(torch.full((2, 3), 1 / 3)))).sum() / 2
    assert task.distill_loss(student, teacher).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_stages_of_a_run():
    assert cls_stages("rbcn", None) == ["fp", "rbcn"]
    assert cls_stages("rbcn", Path("t.pt")) == ["rbcn"]
    assert cls_stages("fp", None) == ["fp"]


def test_two_process_gloo_run_keeps_replicas_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ddp"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "tools" / "train_cls.py"), *SMALL, "--kind", "fp", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = load_checkpoint(out / "fp" / "last.pt")
    # each of the 2 ranks took 64 of the 128 images: 2 steps of batch 32
    assert saved["finished"] and saved["step"] == 2 and saved["budget"]["images_seen"] == 128
    assert json.loads((out / "metrics.json").read_text())["top1"] >= 0


def test_ctrl_c_saves_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, str(ROOT / "tools" / "train_cls.py"), *SMALL, "--kind", "fp",
            "--epochs", "50", "--out", str(out)]
    log = out / "fp" / "log.csv"
    stderr = ctrl_c_after_steps(args, log)
    assert "interrupted: fp: stopped" in stderr, stderr
    saved = load_checkpoint(out / "fp" / "last.pt")
    assert not saved["finished"] and len(csv_rows(log)) == saved["step"] >= 3
    target = saved["step"] + 2
    resumed = subprocess.run(args + ["--resume", "--max-steps", str(target)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 130, resumed.stderr
    assert [int(r["step"]) for r in csv_rows(log)] == list(range(1, target + 1))


def test_shipped_digits_are_found_from_any_working_folder(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "train_cls.py"), *SMALL,
                             "--kind", "fp", "--out", "run"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test_images"] > 0
