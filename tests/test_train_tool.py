"""tools/train_rbsf.py and the chain behind it: every bad value and impossible request is one
error line before any work, the teacher is never silently swapped, Ctrl-C is honoured in every
window, a NaN stop says what is true and its advice works, resume checks the data."""
import csv
import os
import shutil
import signal
from types import SimpleNamespace

import pytest
import torch
from helpers import assert_clear_error

from rbsf.checkpoint import load_checkpoint, model_payload
from rbsf.data import load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.files import save_atomic
from rbsf.models import SiamFCNet
from rbsf.train import Interrupted, Trainer, TrainingError, preset, train_chain
from tools import train_rbsf
from tools.cli import run_tool


@pytest.fixture(scope="module")
def got10k_root(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("got10k")), "got10k", 4, 16, seed=3,
                         frame_size=(240, 180), subsets=("train",))


@pytest.fixture(scope="module")
def other_root(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("other")), "got10k", 4, 16, seed=4,
                         frame_size=(240, 180), subsets=("train",))


@pytest.fixture
def train(capsys):
    """The tool's ``main`` in this process: exit code and outputs."""
    def call(*args):
        code = run_tool(train_rbsf.main, ["--preset", "smoke", *[str(a) for a in args]])
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return call


def teacher_payload(seed: int, **extra):
    torch.manual_seed(seed)
    return model_payload(SiamFCNet("fp", width=0.25), stage="teacher", **extra)


def read_steps(path):
    with open(path, newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("options, phrase", [
    (["--batch-size", "0"], "--batch-size"), (["--lr", "-1"], "--lr"), (["--lr", "0"], "--lr"),
    (["--lr-end", "0"], "--lr-end"), (["--width", "0"], "--width"), (["--width", "-1"], "--width"),
    (["--workers", "-1"], "--workers"), (["--epochs", "0"], "--epochs"),
    (["--pairs-per-epoch", "0"], "--pairs-per-epoch"), (["--max-steps", "0"], "--max-steps"),
    (["--seed", "-1"], "--seed"), (["--lambda1", "-1"], "--lambda1"),
    (["--lambda-decay", "0"], "--lambda-decay"), (["--lambda-every", "0"], "--lambda-every"),
    (["--c-lr-ratio", "-1"], "--c-lr-ratio"), (["--disc-lr", "0"], "--disc-lr"),
    (["--lr", "nan"], "--lr"),
    (["--precision", "fp16"], "--precision"),
    (["--negative-pairs", "1"], "--negative-pairs"),
    (["--negative-pairs", "-0.1"], "--negative-pairs"),
    (["--pairs-per-epoch", "3"], "--pairs-per-epoch 3"),
    (["--batch-size", "8", "--pairs-per-epoch", "4"], "--batch-size"),
])
def test_bad_values_are_refused_before_any_work(train, tmp_path, options, phrase):
    out = tmp_path / "run"
    assert_clear_error(train("--out", out, *options), phrase)
    assert not out.exists()             # nor the synthetic data it would have generated


def test_unwritable_out_is_refused_before_any_work(train, tmp_path):
    (tmp_path / "file").write_text("mine")
    assert_clear_error(train("--out", tmp_path / "file"), "is a file")
    assert_clear_error(train("--out", tmp_path / "file" / "run"), "is a file")
    assert (tmp_path / "file").read_text() == "mine"


def test_a_given_teacher_never_silently_replaced(train, tmp_path, got10k_root):
    out = tmp_path / "run"
    save_atomic(teacher_payload(0, finished=True), out / "teacher" / "last.pt")
    before = (out / "teacher" / "last.pt").read_bytes()
    other = tmp_path / "T.pt"
    save_atomic(teacher_payload(1, finished=True), other)
    result = train("--out", out, "--stage", "xnor", "--teacher", other, "--data", got10k_root)
    assert_clear_error(result, "already holds a teacher", "--teacher", "another --out")
    assert (out / "teacher" / "last.pt").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["teacher"]


def test_unfinished_teacher_is_refused_with_how_far_it_got(train, tmp_path, got10k_root):
    out = tmp_path / "run"
    # stopped at step 5, the first of epoch 2 (the checkpoint counts the epochs done)
    unfinished = teacher_payload(0, finished=False, epoch=1, batch=1, step=5,
                                 train_config=preset("smoke").to_dict())
    save_atomic(unfinished, out / "teacher" / "last.pt")
    result = train("--out", out, "--stage", "xnor", "--data", got10k_root)
    assert_clear_error(result, "unfinished teacher training: epoch 2 of 3, step 5",
                       "--stage teacher", "--resume")
    given = tmp_path / "elsewhere" / "teacher" / "last.pt"
    save_atomic(unfinished, given)
    result = train("--out", tmp_path / "run2", "--stage", "xnor", "--teacher", given,
                   "--data", got10k_root)
    assert_clear_error(result, "unfinished teacher training", "--resume")
    assert not (tmp_path / "run2").exists()


def test_impossible_chains_are_refused_before_generating_data(train, tmp_path):
    out = tmp_path / "run"
    assert_clear_error(train("--out", out, "--stage", "xnor"), "needs a teacher", "--teacher")
    assert not out.exists()
    save_atomic(teacher_payload(0, finished=True), out / "teacher" / "last.pt")
    assert_clear_error(train("--out", out, "--stage", "teacher"), "exists", "--resume")
    assert sorted(p.name for p in out.iterdir()) == ["teacher"]


def test_init_is_refused_without_a_teacher_stage_or_with_unusable_weights(train, tmp_path,
                                                                          got10k_root):
    given = tmp_path / "T.pt"
    save_atomic(teacher_payload(0, finished=True), given)
    out = tmp_path / "run"
    result = train("--out", out, "--init", given, "--teacher", given, "--data", got10k_root)
    assert_clear_error(result, "--init", "no teacher is trained here")
    unfinished = tmp_path / "U.pt"
    save_atomic(teacher_payload(0, finished=False, epoch=1, batch=1, step=5,
                                train_config=preset("smoke").to_dict()), unfinished)
    assert_clear_error(train("--out", out, "--stage", "teacher", "--init", unfinished,
                             "--data", got10k_root), "unfinished teacher training")
    assert_clear_error(train("--out", out, "--stage", "teacher", "--init", given,
                             "--width", "0.5", "--data", got10k_root), "has width 0.25",
                       "--width 0.25")
    assert not out.exists()


def test_student_init_is_refused_when_it_cannot_be_the_stage_start(train, tmp_path,
                                                                  got10k_root):
    teacher = tmp_path / "T.pt"
    save_atomic(teacher_payload(0, finished=True), teacher)
    student = tmp_path / "X.pt"
    save_atomic(model_payload(SiamFCNet("xnor", width=0.25), stage="xnor", finished=True),
                student)
    rbconv = tmp_path / "R.pt"
    save_atomic(model_payload(SiamFCNet("rbconv", "matrix", width=0.25), stage="rbsf",
                              finished=True), rbconv)
    out = tmp_path / "run"
    common = ("--out", out, "--teacher", teacher, "--data", got10k_root)
    assert_clear_error(train(*common, "--stage", "xnor", "--init", f"xnor={teacher}"),
                       "holds a fp model", "must be xnor")
    assert_clear_error(train(*common, "--stage", "xnor", "--init", f"rbsf={student}"),
                       "no rbsf is trained here")
    assert_clear_error(train(*common, "--stage", "rbsf", "--init", f"rbsf={rbconv}"),
                       "trained with --c-mode matrix", "pass --c-mode matrix")
    assert_clear_error(train(*common, "--init", f"xnor={student}", "--init", f"xnor={student}"),
                       "--init names stage xnor twice")
    assert not out.exists()


def test_a_later_stage_init_does_not_block_resuming_an_earlier_stage(train, tmp_path,
                                                                    got10k_root):
    out = tmp_path / "run"
    stopped = train("--out", out, "--stage", "teacher", "--max-steps", "1", "--data",
                    got10k_root)
    assert stopped.returncode == 130, stopped.stderr
    student = tmp_path / "X.pt"
    save_atomic(model_payload(SiamFCNet("xnor", width=0.25), stage="xnor", finished=True),
                student)
    resumed = train("--out", out, "--resume", "--stage", "all", "--init", f"xnor={student}",
                    "--data", got10k_root)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out / "xnor" / "last.pt")["train_config"]["init"] == {
        "xnor": str(student)}


def run_to_nan(train, out, root, monkeypatch, step: int):
    """Train the teacher (2 epochs of 2 steps) with the task loss of ``step`` made NaN, as a
    diverging run would; returns the tool's result and the arguments to run it again."""
    real = Trainer.task_loss

    def task_loss(self, response, positive=None):
        loss = real(self, response, positive)
        return loss * float("nan") if self.step + 1 == step else loss

    monkeypatch.setattr(Trainer, "task_loss", task_loss)
    args = ("--out", out, "--stage", "teacher", "--epochs", "2", "--pairs-per-epoch", "8",
            "--data", root)
    result = train(*args)
    monkeypatch.undo()
    return result, args


def test_nan_before_the_first_checkpoint_says_so_and_rerun_keeps_one_log(
        train, tmp_path, got10k_root, monkeypatch):
    out = tmp_path / "run"
    result, args = run_to_nan(train, out, got10k_root, monkeypatch, 2)
    assert_clear_error(result, "became nan at epoch 1, step 2", "no checkpoint of this stage",
                       "--resume")
    assert "kept" not in result.stderr and not (out / "teacher" / "last.pt").exists()
    assert read_steps(out / "teacher" / "log.csv") == [1]
    assert train(*args, "--resume", "--lr", "0.01").returncode == 0
    assert read_steps(out / "teacher" / "log.csv") == [1, 2, 3, 4]   # one row per step


def test_nan_after_a_checkpoint_names_it_and_resume_with_a_lower_lr_works(
        train, tmp_path, got10k_root, monkeypatch):
    out = tmp_path / "run"
    result, args = run_to_nan(train, out, got10k_root, monkeypatch, 4)
    ckpt = out / "teacher" / "last.pt"
    assert_clear_error(result, "became nan at epoch 2, step 4",
                       f"last checkpoint before it (step 2) is kept in {ckpt}", "--resume")
    assert load_checkpoint(ckpt)["step"] == 2
    assert_clear_error(train(*args, "--resume", "--lr", "0.01", "--seed", "1"), "seed")
    assert train(*args, "--resume", "--lr", "0.01").returncode == 0
    saved = load_checkpoint(ckpt)
    assert saved["finished"] and saved["step"] == 4
    assert saved["train_config"]["stages"]["teacher"]["lr"] == 0.01
    assert saved["settings_changes"][0]["step"] == 2
    with open(out / "teacher" / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    gamma = (preset("smoke").stage("teacher").lr_end / 0.01) ** (1 / 2)
    assert float(rows[2]["lr"]) == pytest.approx(0.01 * gamma, rel=1e-5)   # new schedule, epoch 2


def test_nan_at_the_first_step_after_a_checkpoint_says_no_lr_can_help(
        train, tmp_path, got10k_root, monkeypatch):
    out = tmp_path / "run"
    result, args = run_to_nan(train, out, got10k_root, monkeypatch, 3)
    assert_clear_error(result, "became nan at epoch 2, step 3", "checkpoint of step 2",
                       "whatever the learning rate", "another --out")
    assert_clear_error(train(*args, "--resume", "--lr", "0.01"), "other settings")


def test_resume_on_other_data_is_refused(train, tmp_path, got10k_root, other_root):
    out = tmp_path / "run"
    args = ("--out", out, "--stage", "teacher", "--epochs", "2", "--pairs-per-epoch", "8")
    assert train(*args, "--data", got10k_root, "--max-steps", "1").returncode == 130
    before = (out / "teacher" / "last.pt").read_bytes()
    assert_clear_error(train(*args, "--data", other_root, "--resume"), "other data",
                       "4 sequences")
    assert (out / "teacher" / "last.pt").read_bytes() == before


def test_ctrl_c_while_a_stage_saves_its_end_stops_the_chain(tmp_path, got10k_root, monkeypatch):
    import rbsf.train.trainer as trainer_module
    sequences = load_sequences(str(got10k_root))
    config = preset("smoke")
    for stage in ("teacher", "xnor"):
        config.stage(stage).epochs, config.stage(stage).pairs_per_epoch = 1, 4
    real_plot = trainer_module.plot_losses

    def plot_with_ctrl_c(*args):
        os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C in the save/plot window of the stage
        real_plot(*args)

    monkeypatch.setattr(trainer_module, "plot_losses", plot_with_ctrl_c)
    with pytest.raises(Interrupted, match="teacher: finished.* --resume"):
        train_chain(config, ["teacher", "xnor"], sequences, tmp_path)
    assert load_checkpoint(tmp_path / "teacher" / "last.pt")["finished"]
    assert not (tmp_path / "xnor").exists()
    monkeypatch.undo()
    train_chain(config, ["teacher", "xnor"], sequences, tmp_path, resume=True)
    assert load_checkpoint(tmp_path / "xnor" / "last.pt")["finished"]


def test_generated_data_is_complete_or_refused(train, tmp_path, got10k_root, monkeypatch):
    import rbsf.data.synthetic as synthetic
    out = tmp_path / "run"
    shutil.copytree(got10k_root, out / "data")        # a set cut short by an old interruption
    shutil.rmtree(out / "data" / "train" / "GOT-10k_Train_000004")
    assert_clear_error(train("--out", out), "incomplete", f"delete {out / 'data'}")
    shutil.rmtree(out)

    def ctrl_c(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_job", ctrl_c)
    result = train("--out", out)
    assert result.returncode == 130 and "Traceback" not in result.stderr
    assert not out.exists() or list(out.iterdir()) == []      # no data, no partial folder


def test_chain_refuses_a_mismatched_teacher_in_the_library_too(tmp_path, got10k_root):
    save_atomic(teacher_payload(0, finished=True), tmp_path / "teacher" / "last.pt")
    other = tmp_path / "T.pt"
    save_atomic(teacher_payload(1, finished=True), other)
    with pytest.raises(TrainingError, match="already holds a teacher"):
        train_chain(preset("smoke"), ["xnor"], load_sequences(str(got10k_root)), tmp_path,
                    teacher_path=other)


@pytest.mark.parametrize("width", [0.01, 0.31, 0.7])
def test_every_width_the_tool_accepts_builds_a_working_net(width):
    for kind in ("fp", "rbconv"):
        net = SiamFCNet(kind, width=width).eval()
        with torch.no_grad():
            assert net(torch.zeros(1, 3, 127, 127), torch.zeros(1, 3, 255, 255)).shape[-1] == 17
