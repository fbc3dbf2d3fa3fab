"""tools/eval.py end to end on generated data: tracking, reports, reruns and clear errors."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import assert_clear_error

from rbsf.checkpoint import model_payload
from rbsf.data.synthetic import write_dataset
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from tools import eval as eval_tool
from tools.cli import run_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaltool")
    root = write_dataset(str(base / "otb"), "otb", 2, 6, seed=5, frame_size=(128, 96))
    torch.manual_seed(0)
    weights = base / "weights"
    save_atomic(model_payload(SiamFCNet("rbconv", width=0.25)), weights / "rbsf.pt")
    save_atomic(model_payload(SiamFCNet("fp", width=0.25)), weights / "run" / "teacher" / "last.pt")
    return base, root, weights


def _cli(base, *args):
    """The real command line, in a subprocess."""
    cmd = [sys.executable, str(REPO / "tools" / "eval.py"), "--result-dir", str(base / "res"),
           "--report-dir", str(base / "rep"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.fixture
def _eval(capsys):
    """The tool in this process (no interpreter start-up), same outputs."""
    def call(base, *args):
        code = run_tool(eval_tool.main, ["--result-dir", str(base / "res"),
                                         "--report-dir", str(base / "rep"), *args])
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return call


def test_custom_dataset_end_to_end_and_rerun_skips(setup, _eval):
    base, root, weights = setup
    proc = _cli(base, "--dataset", "custom", "--root", str(root), "--trackers", "rbsf",
                 "--weights-dir", str(weights))
    assert proc.returncode == 0, proc.stderr
    report = base / "rep" / "custom"
    summary = json.loads((report / "summary.json").read_text())
    scores = summary["trackers"]["RB-SF"]
    assert 0 <= scores["success_auc"] <= 1 and scores["fps"] > 0
    assert set(scores["per_sequence"]) == {p.name for p in root.iterdir()}
    assert "| custom | success |" in (report / "summary.md").read_text()
    for plot in ("success_plot.png", "precision_plot.png"):
        assert (report / plot).stat().st_size > 10_000
    seq = sorted(p.name for p in root.iterdir())[0]
    boxes = np.loadtxt(base / "res" / "custom" / "RB-SF" / f"{seq}.txt", delimiter=",")
    assert boxes.shape == (6, 4)
    assert (base / "res" / "custom" / "RB-SF" / "times" / f"{seq}_time.txt").is_file()
    rerun = _eval(base, "--dataset", "custom", "--root", str(root), "--trackers", "rbsf",
                  "--weights-dir", str(weights))
    assert rerun.returncode == 0 and "2 finished sequence result(s)" in rerun.stdout
    assert_clear_error(_cli(base, "--dataset", "OTB50", "--root", str(base / "nope"),
                             "--weights-dir", str(weights)), "does not exist")


def test_training_folder_weights_and_two_workers(setup, _eval):
    base, root, weights = setup
    proc = _eval(base, "--dataset", "custom", "--root", str(root), "--trackers", "siamfc",
                 "--weights-dir", str(weights / "run"), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((base / "rep" / "custom" / "summary.json").read_text())
    assert list(summary["trackers"]) == ["SiamFC"]


def test_wrong_root_is_a_clear_error(setup, _eval, monkeypatch):
    base, _, weights = setup
    monkeypatch.setenv("RBSF_OTB", str(base / "env-root"))
    assert_clear_error(_eval(base, "--dataset", "OTB100", "--weights-dir", str(weights)),
                        str(base / "env-root"), "RBSF_OTB")
    assert_clear_error(_eval(base, "--dataset", "OTB50", "--root", str(base / "nope"),
                              "--trackers", "rbsf", "--weights-dir", str(weights)),
                        "does not exist", "--root")
    assert_clear_error(_eval(base, "--dataset", "GOT10k", "--root", str(base / "otb"),
                              "--trackers", "rbsf", "--weights-dir", str(weights)),
                        "not a GOT-10k root", "list.txt")


def test_missing_sequences_listed_and_allow_partial(setup, _eval):
    base, root, weights = setup
    args = ("--dataset", "OTB2013", "--root", str(root), "--trackers", "rbsf",
            "--weights-dir", str(weights))
    assert_clear_error(_eval(base, *args), "OTB2013 sequences are missing", "Bolt",
                        "--allow-partial")
    assert_clear_error(_eval(base, *args, "--sequences", "NoSuchSeq"), "NoSuchSeq")
    proc = _eval(base, *args, "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    text = (base / "rep" / "OTB2013" / "summary.md").read_text()
    assert "Partial evaluation" in text and "Sequences evaluated: 1." in text


def test_missing_weights_is_a_clear_error(setup, _eval):
    base, root, weights = setup
    assert_clear_error(_eval(base, "--dataset", "custom", "--root", str(root), "--trackers",
                              "xnor", "--weights-dir", str(weights)), "no weights for xnor")


def test_corrupt_frame_and_box_outside_image(tmp_path, setup, _eval):
    _, _, weights = setup
    root = write_dataset(str(tmp_path / "otb"), "otb", 1, 4, seed=6, frame_size=(96, 72))
    seq = next(root.iterdir())
    (seq / "img" / "0003.jpg").write_bytes(b"not a jpeg")
    assert_clear_error(_eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                              "rbsf", "--weights-dir", str(weights)), "cannot read frame", "0003.jpg")
    (seq / "groundtruth_rect.txt").write_text("500,500,10,10\n" * 4)
    assert_clear_error(_eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                              "rbsf", "--weights-dir", str(weights)), "entirely outside", seq.name)


def test_got10k_val_report_and_test_submission(tmp_path, setup, _eval):
    _, _, weights = setup
    root = write_dataset(str(tmp_path / "got"), "got10k", 2, 4, seed=7, frame_size=(96, 72))
    args = ("--dataset", "GOT10k", "--root", str(root), "--trackers", "rbsf",
            "--weights-dir", str(weights))
    assert _eval(tmp_path, *args, "--subset", "val").returncode == 0
    summary = json.loads((tmp_path / "rep" / "GOT-10k" / "summary.json").read_text())
    assert summary["subset"] == "val" and 0 <= summary["trackers"]["RB-SF"]["ao"] <= 1
    assert (tmp_path / "res" / "GOT-10k" / "RB-SF" / "GOT-10k_Val_000001" /
            "GOT-10k_Val_000001_001.txt").is_file()
    proc = _eval(tmp_path, *args, "--subset", "test")
    assert proc.returncode == 0 and "RB-SF.zip" in proc.stdout
    assert (tmp_path / "rep" / "GOT-10k" / "RB-SF.zip").is_file()


def test_packed_tracker_gives_the_boxes_of_its_source_model(setup, _eval, tmp_path):
    """Shipped (trained) weights: a random model's flat responses make the argmax a coin toss
    between float-rounding neighbours, a trained one's do not. The 8-bit conv1 variant
    (packed-int8) runs beside them as its own tracker."""
    from rbsf.checkpoint import load_model
    from rbsf.deploy.packed import save_packed
    base, root, weights = setup
    shipped = REPO / "data" / "weights" / "rbsf.pt"
    packed_dir = tmp_path / "weights"
    packed_dir.mkdir()
    (packed_dir / "rbsf.pt").write_bytes(shipped.read_bytes())
    save_packed(load_model(shipped), packed_dir / "rbsf.packed")
    proc = _eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                 "rbsf,packed,packed-int8", "--weights-dir", str(packed_dir))
    assert proc.returncode == 0, proc.stderr
    assert "RB-SF packed int8" in proc.stdout
    for seq in ("Basketball", "Biker"):
        float_boxes = np.loadtxt(tmp_path / "res" / "custom" / "RB-SF" / f"{seq}.txt", delimiter=",")
        packed_boxes = np.loadtxt(tmp_path / "res" / "custom" / "RB-SF packed" / f"{seq}.txt",
                                  delimiter=",")
        assert np.allclose(float_boxes, packed_boxes, atol=1e-3)
