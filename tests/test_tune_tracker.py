"""experiments.tune_tracker: coordinate descent over tracker settings, resumable, its best
settings a file the tools read."""
import json

import pytest
import torch

from experiments import tune_tracker
from rbsf.checkpoint import model_payload
from rbsf.data.synthetic import write_dataset
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from trackers.siamfc import TrackerParams, load_params

SMALL_GRID = {"window_influence": (0.1, 0.176), "scale_lr": (0.0, 0.59)}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(tune_tracker, "GRID", SMALL_GRID)
    monkeypatch.setattr(tune_tracker, "MIN_GAIN", 0.0)
    root = write_dataset(str(tmp_path / "val"), "otb", 2, 5, seed=3, frame_size=(128, 96))
    torch.manual_seed(0)
    save_atomic(model_payload(SiamFCNet("rbconv", width=0.25)), tmp_path / "w" / "rbsf.pt")
    return tmp_path, root


def test_every_trial_is_recorded_and_the_best_is_a_settings_file(setup):
    tmp_path, root = setup
    out = tmp_path / "tune"
    assert tune_tracker.main(["--tracker", "rbsf", "--weights-dir", str(tmp_path / "w"),
                              "--root", str(root), "--out", str(out)]) == 0
    record = json.loads((out / "tuning.json").read_text())
    # reference, then window 0.1, then scale_lr 0.0 at the better window: 3 distinct trials
    assert len(record["trials"]) == 3
    best = max(record["trials"], key=lambda t: t["success_auc"])
    assert record["best"]["success_auc"] == best["success_auc"]
    chosen = load_params(out / "params.json").shared
    assert chosen.window_influence == best["params"]["window_influence"]
    assert "| window_influence | scale_lr | success |" in (out / "tuning.md").read_text()


def test_a_second_pass_tries_each_field_again_from_the_new_best(setup, monkeypatch):
    tmp_path, root = setup

    def scores(result_dir, name, sequences):
        # the lower rate gains alone; the lower window only together with it
        rate, window = "scale_lr=0-" in name + "-", "window_influence=0.1-" in name + "-"
        success = 0.5 + 0.1 * rate + 0.1 * (rate and window)
        return {"success_auc": success, "precision_20": 0.0, "sr_50": 0.0}
    monkeypatch.setattr(tune_tracker, "score_otb", scores)
    argv = ["--tracker", "rbsf", "--weights-dir", str(tmp_path / "w"), "--root", str(root)]
    assert tune_tracker.main(argv + ["--out", str(tmp_path / "one")]) == 0
    assert json.loads((tmp_path / "one" / "params.json").read_text())["scale_lr"] == 0.0
    assert json.loads((tmp_path / "one" / "params.json").read_text())["window_influence"] == 0.176
    assert tune_tracker.main(argv + ["--out", str(tmp_path / "two"), "--passes", "5"]) == 0
    record = json.loads((tmp_path / "two" / "tuning.json").read_text())
    assert record["best"]["params"] == {"window_influence": 0.1, "scale_lr": 0.0}
    assert record["best"]["success_auc"] == pytest.approx(0.7)


def test_a_gain_below_the_margin_keeps_the_reference(setup, monkeypatch):
    tmp_path, root = setup
    monkeypatch.setattr(tune_tracker, "MIN_GAIN", 1.0)
    out = tmp_path / "tune"
    assert tune_tracker.main(["--tracker", "rbsf", "--weights-dir", str(tmp_path / "w"),
                              "--root", str(root), "--out", str(out)]) == 0
    assert load_params(out / "params.json").shared == TrackerParams()
    assert (out / "results" / "custom" / "reference").is_dir()


def test_a_rerun_tracks_nothing_again(setup, monkeypatch):
    tmp_path, root = setup
    argv = ["--tracker", "rbsf", "--weights-dir", str(tmp_path / "w"), "--root", str(root),
            "--out", str(tmp_path / "tune")]
    assert tune_tracker.main(argv) == 0
    first = (tmp_path / "tune" / "tuning.json").read_text()

    def no_tracking(jobs, *args, **kwargs):
        assert not jobs, "finished trials were tracked again"
    monkeypatch.setattr(tune_tracker, "run_jobs", no_tracking)
    assert tune_tracker.main(argv) == 0
    assert (tmp_path / "tune" / "tuning.json").read_text() == first


def test_missing_weights_is_one_error_line(setup, capsys):
    tmp_path, root = setup
    assert tune_tracker.main(["--tracker", "xnor", "--weights-dir", str(tmp_path / "w"),
                              "--root", str(root), "--out", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err.startswith("error: no weights for xnor")


def test_the_descent_starts_from_a_settings_file_over_the_fields_asked_for(setup):
    tmp_path, root = setup
    start = tmp_path / "tracking.json"
    start.write_text(json.dumps({"motion_lr": 0.3, "scale_lr": 0.2,
                                 "per_tracker": {"rbsf": {"template_lr": 0.01}}}))
    out = tmp_path / "tune"
    assert tune_tracker.main(["--tracker", "rbsf", "--weights-dir", str(tmp_path / "w"),
                              "--root", str(root), "--out", str(out), "--start", str(start),
                              "--fields", "window_influence"]) == 0
    record = json.loads((out / "tuning.json").read_text())
    assert [t["settings"] for t in record["trials"]] == [
        {"scale_lr": 0.2, "template_lr": 0.01, "motion_lr": 0.3},
        {"scale_lr": 0.2, "window_influence": 0.1, "template_lr": 0.01, "motion_lr": 0.3}]
    chosen = load_params(out / "params.json").shared
    assert (chosen.motion_lr, chosen.template_lr, chosen.scale_lr) == (0.3, 0.01, 0.2)


@pytest.mark.parametrize("option, message", [(["--fields", "window"], "--fields wants names"),
                                             (["--start", "none.json"], "cannot read tracker")])
def test_bad_start_or_fields_is_one_line(setup, capsys, option, message):
    tmp_path, root = setup
    assert tune_tracker.main(["--tracker", "rbsf", "--weights-dir", str(tmp_path / "w"),
                              "--root", str(root), "--out", str(tmp_path / "tune"),
                              *option]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tune").exists()
