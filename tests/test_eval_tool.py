"""tools/eval.py end to end on generated data: tracking, reports, reruns and clear errors."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_clear_error, run_in_process

from rbsf.checkpoint import model_payload
from rbsf.data.sequences import read_boxes
from rbsf.data.synthetic import CROSSER_FILE, write_dataset
from rbsf.eval.crossings import OUTCOMES
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from tools import eval as eval_tool

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
        return run_in_process(eval_tool.main, ["--result-dir", base / "res",
                                               "--report-dir", base / "rep", *args], capsys)
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
    assert not (report / "crossings.json").exists()      # not a crossing set
    seq = sorted(p.name for p in root.iterdir())[0]
    boxes = np.loadtxt(base / "res" / "custom" / "RB-SF" / f"{seq}.txt", delimiter=",")
    assert boxes.shape == (6, 4)
    assert (base / "res" / "custom" / "RB-SF" / "times" / f"{seq}_time.txt").is_file()
    rerun = _eval(base, "--dataset", "custom", "--root", str(root), "--trackers", "rbsf",
                  "--weights-dir", str(weights))
    assert rerun.returncode == 0 and "2 finished sequence result(s)" in rerun.stdout
    assert_clear_error(_cli(base, "--dataset", "OTB50", "--root", str(base / "nope"),
                             "--weights-dir", str(weights)), "does not exist")


def test_a_crossing_set_also_gets_whom_each_tracker_followed(setup, _eval, tmp_path):
    base, root, weights = setup
    crossing = tmp_path / "crossing"
    shutil.copytree(root, crossing)
    for seq in crossing.iterdir():
        truth = read_boxes(seq / "groundtruth_rect.txt")
        crosser = truth + np.array([[dx, 0, 0, 0] for dx in (40, 20, 0, 0, 20, 40)])
        np.savetxt(seq / CROSSER_FILE, crosser, fmt="%.1f", delimiter=",")
    out = _eval(tmp_path, "--dataset", "custom", "--root", str(crossing), "--trackers", "rbsf",
                "--weights-dir", str(weights))
    assert out.returncode == 0, out.stderr
    assert "| tracker | kept | switched | lost |" in out.stdout
    report = tmp_path / "rep" / "custom"
    record = json.loads((report / "crossings.json").read_text())
    assert set(record["outcomes"]["RB-SF"]) == {p.name for p in crossing.iterdir()}
    assert set(record["outcomes"]["RB-SF"].values()) <= set(OUTCOMES)
    assert (report / "crossings.png").read_bytes()[:4] == b"\x89PNG"
    first = sorted(p.name for p in crossing.iterdir())[0]
    part = _eval(tmp_path / "part", "--dataset", "custom", "--root", str(crossing),
                 "--trackers", "rbsf", "--weights-dir", str(weights), "--sequences", first)
    assert part.returncode == 0, part.stderr
    record = json.loads((tmp_path / "part" / "rep" / "custom" / "crossings.json").read_text())
    assert list(record["outcomes"]["RB-SF"]) == [first]


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
    assert_clear_error(_eval(base, *args, "--sequences", " , "), "--sequences names no sequence")
    proc = _eval(base, *args, "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    text = (base / "rep" / "OTB2013" / "summary.md").read_text()
    assert "Partial evaluation" in text and "Sequences evaluated: 1." in text


def test_missing_weights_is_a_clear_error(setup, _eval):
    base, root, weights = setup
    assert_clear_error(_eval(base, "--dataset", "custom", "--root", str(root), "--trackers",
                              "xnor", "--weights-dir", str(weights)),
                       "no weights for xnor: no file")


def test_corrupt_frame_and_box_outside_image(tmp_path, setup, _eval):
    _, _, weights = setup
    root = write_dataset(str(tmp_path / "otb"), "otb", 1, 4, seed=6, frame_size=(96, 72))
    seq = next(root.iterdir())
    (seq / "img" / "0003.jpg").write_bytes(b"not a jpeg")
    assert_clear_error(_eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                              "rbsf", "--weights-dir", str(weights)),
                       "cannot read frame", "0003.jpg")
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
        float_boxes = np.loadtxt(tmp_path / "res" / "custom" / "RB-SF" / f"{seq}.txt",
                                 delimiter=",")
        packed_boxes = np.loadtxt(tmp_path / "res" / "custom" / "RB-SF packed" / f"{seq}.txt",
                                  delimiter=",")
        assert np.allclose(float_boxes, packed_boxes, atol=1e-3)


def test_no_tracker_named_is_a_clear_error_and_writes_nothing(setup, tmp_path, _eval):
    """``--trackers ""`` used to write a malformed summary, then end in StopIteration."""
    _, root, weights = setup
    for text in ("", " , "):
        assert_clear_error(_eval(tmp_path, "--dataset", "custom", "--root", str(root),
                                 "--trackers", text, "--weights-dir", str(weights)),
                           "no tracker named")
    assert list(tmp_path.iterdir()) == []


def test_weights_of_another_kind_of_model_are_refused(setup, tmp_path, _eval):
    """Results are filed under the model's kind: an RB-SF model in siamfc.pt is not SiamFC."""
    _, root, weights = setup
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "siamfc.pt").write_bytes((weights / "rbsf.pt").read_bytes())
    assert_clear_error(_eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                             "siamfc", "--weights-dir", str(wrong)),
                       "holds a RB-SF model", "use tracker 'rbsf'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrong"]


@pytest.mark.parametrize("where, message", [
    ("result-dir is a file", "is a file, not a folder"),
    ("report-dir is a file", "is a file, not a folder"),
    ("summary.json is a folder", "report file"),
    ("result file is a folder", "result file")])
def test_unwritable_outputs_are_refused_before_tracking(setup, tmp_path, capsys, where, message):
    """They used to end in a traceback, for the report after all the tracking."""
    _, root, weights = setup
    (tmp_path / "file").write_text("mine")
    result_dir, report_dir = tmp_path / "res", tmp_path / "rep"
    if where == "result-dir is a file":
        result_dir = tmp_path / "file"
    elif where == "report-dir is a file":
        report_dir = tmp_path / "file"
    elif where == "summary.json is a folder":
        (report_dir / "custom" / "summary.json").mkdir(parents=True)
    else:
        (result_dir / "custom" / "RB-SF" / "Biker.txt").mkdir(parents=True)
    proc = run_in_process(eval_tool.main, ["--dataset", "custom", "--root", root, "--trackers",
                                           "rbsf", "--weights-dir", weights, "--result-dir",
                                           result_dir, "--report-dir", report_dir], capsys)
    assert_clear_error(proc, message)
    assert (tmp_path / "file").read_text() == "mine"
    assert not [p for p in tmp_path.glob("res/**/*.txt") if p.is_file()]  # nothing tracked


def test_unfinished_checkpoints_are_named_in_the_warnings_and_the_report(setup, tmp_path, _eval):
    _, root, weights = setup
    run = tmp_path / "run"
    for stage, kind in (("teacher", "fp"), ("rbsf", "rbconv")):
        save_atomic(model_payload(SiamFCNet(kind, width=0.25), stage=stage, finished=False,
                                  epoch=2, step=40,
                                  train_config={"stages": {stage: {"epochs": 5}}}),
                    run / stage / "last.pt")
    save_atomic(model_payload(SiamFCNet("xnor", width=0.25), stage="xnor", finished=True),
                run / "xnor" / "last.pt")
    proc = _eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                 "siamfc,xnor,rbsf", "--weights-dir", str(run), "--sequences", "Biker")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2
    assert "SiamFC" in warnings[0] and "unfinished teacher training: epoch 2 of 5" in warnings[0]
    assert "RB-SF" in warnings[1] and "unfinished rbsf training: epoch 2 of 5" in warnings[1]
    summary = json.loads((tmp_path / "rep" / "custom" / "summary.json").read_text())
    assert summary["unfinished"] == {"SiamFC": "unfinished teacher training: epoch 2 of 5, step 40",
                                     "RB-SF": "unfinished rbsf training: epoch 2 of 5, step 40"}
    text = (tmp_path / "rep" / "custom" / "summary.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| dataset"))
    assert header == "| dataset | metric | SiamFC (unfinished) | XNOR-SF | RB-SF (unfinished) |"
    assert "unfinished rbsf training: epoch 2 of 5, step 40" in text
    assert header in proc.stdout


def test_ctrl_c_keeps_finished_sequences_and_a_rerun_continues(setup, tmp_path, _eval,
                                                               monkeypatch):
    _, root, weights = setup
    from rbsf.eval import runner
    calls = []
    track = runner.track_sequence

    def interrupted_on_the_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return track(*args)
    monkeypatch.setattr(runner, "track_sequence", interrupted_on_the_second)
    args = ("--dataset", "custom", "--root", str(root), "--trackers", "rbsf", "--weights-dir",
            str(weights))
    proc = _eval(tmp_path, *args)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("interrupted")
    assert len(list((tmp_path / "res" / "custom" / "RB-SF").glob("*.txt"))) == 1
    assert not (tmp_path / "rep").exists()
    rerun = _eval(tmp_path, *args)
    assert rerun.returncode == 0 and "1 finished sequence result(s)" in rerun.stdout


def test_tracker_settings_file_is_used_recorded_and_kept_apart(setup, tmp_path, _eval):
    base, root, weights = setup
    args = ("--dataset", "custom", "--root", str(root), "--trackers", "rbsf",
            "--weights-dir", str(weights))
    assert _eval(tmp_path, *args).returncode == 0
    reference = np.loadtxt(sorted((tmp_path / "res" / "custom" / "RB-SF").glob("*.txt"))[0],
                           delimiter=",")
    assert "SiamFC's reference values" in (tmp_path / "rep" / "custom" / "summary.md").read_text()
    settings = tmp_path / "wide.json"
    settings.write_text(json.dumps({"window_influence": 0.9, "scale_lr": 0.0}))
    # results of the reference settings are not reused, nor mixed with other settings
    assert_clear_error(_eval(tmp_path, *args, "--params", str(settings)),
                       "other settings", "delete that folder")
    other = tmp_path / "other"
    proc = _eval(other, *args, "--params", str(settings))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((other / "rep" / "custom" / "summary.json").read_text())
    assert summary["settings"] == {"RB-SF": {"window_influence": 0.9, "scale_lr": 0.0}}
    assert "window_influence=0.9" in (other / "rep" / "custom" / "summary.md").read_text()
    boxes = np.loadtxt(sorted((other / "res" / "custom" / "RB-SF").glob("*.txt"))[0],
                       delimiter=",")
    assert np.allclose(boxes[1:, 2:], boxes[0, 2:])          # scale_lr 0: the size never moves
    assert not np.allclose(boxes, reference)


def test_settings_beside_the_weights_are_the_default(setup, tmp_path, _eval):
    base, root, weights = setup
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "rbsf.pt").write_bytes((weights / "rbsf.pt").read_bytes())
    (folder / "tracking.json").write_text(json.dumps({"scale_step": 1.09}))
    args = ("--dataset", "custom", "--root", str(root), "--trackers", "rbsf",
            "--weights-dir", str(folder))
    assert _eval(tmp_path, *args).returncode == 0
    assert json.loads((tmp_path / "rep" / "custom" / "summary.json").read_text())[
        "settings"] == {"RB-SF": {"scale_step": 1.09}}
    proc = _eval(tmp_path / "ref", *args, "--params", "reference")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "ref" / "rep" / "custom" / "summary.json").read_text())[
        "settings"] == {"RB-SF": {}}


def test_a_tracker_runs_its_own_settings_from_the_file(setup, tmp_path, _eval):
    base, root, weights = setup
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "rbsf.pt").write_bytes((weights / "rbsf.pt").read_bytes())
    (folder / "siamfc.pt").write_bytes((weights / "run" / "teacher" / "last.pt").read_bytes())
    (folder / "tracking.json").write_text(json.dumps(
        {"scale_step": 1.09, "motion_lr": 0.3, "per_tracker": {"siamfc": {"motion_lr": 0.0}}}))
    proc = _eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                 "siamfc,rbsf", "--weights-dir", str(folder))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "rep" / "custom" / "summary.json").read_text())
    assert summary["settings"] == {"SiamFC": {"scale_step": 1.09},
                                   "RB-SF": {"scale_step": 1.09, "motion_lr": 0.3}}
    report = (tmp_path / "rep" / "custom" / "summary.md").read_text()
    assert "Settings of SiamFC: scale_step=1.09 (the rest" in report
    assert "Settings of RB-SF: scale_step=1.09, motion_lr=0.3 (the rest" in report
    recorded = json.loads((tmp_path / "res" / "custom" / "SiamFC" / "tracker.json").read_text())
    assert recorded["settings"] == {"scale_step": 1.09}


@pytest.mark.parametrize("text, message", [
    (None, "cannot read tracker settings"),
    ("{not json", "cannot read tracker settings"),
    ("[1, 2]", "must be a JSON object"),
    ('{"window": 0.2}', "unknown setting(s) window"),
    ('{"scale_num": 2}', "scale_num=2 must be odd"),
    ('{"window_influence": 1.5}', "window_influence=1.5 must be in [0, 1]"),
    ('{"scale_step": "big"}', "scale_step must be a number"),
    ('{"response_up": 2.5}', "response_up must be an integer"),
    ('{"per_tracker": {"kcf": {}}}', "per_tracker names unknown tracker 'kcf'"),
    ('{"per_tracker": {"rbsf": {"motion_lr": 2}}}', "(per_tracker rbsf): tracker setting "
                                                    "motion_lr=2 must be in [0, 1]"),
    ('{"per_tracker": {"rbsf": 0.3}}', "per_tracker must map tracker names to objects"),
    ('{"per_tracker": [1]}', "per_tracker must map tracker names to objects"),
])
def test_bad_settings_file_is_one_line_before_tracking(setup, tmp_path, _eval, text, message):
    base, root, weights = setup
    path = tmp_path / "settings.json"
    if text is not None:
        path.write_text(text)
    assert_clear_error(_eval(tmp_path, "--dataset", "custom", "--root", str(root), "--trackers",
                             "rbsf", "--weights-dir", str(weights), "--params", str(path)),
                       message)
    assert not (tmp_path / "res").exists()
