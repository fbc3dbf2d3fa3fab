"""experiments.ship_trained: a finished chain becomes the shipped files, with its facts."""
import json

import pytest
import torch

from experiments.ship_trained import ShipError, main, ship
from experiments.slim_run import main as slim_main
from rbsf.checkpoint import load_checkpoint, load_model
from rbsf.data import load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.train import Interrupted, TrainingError, preset, train_chain
from rbsf.train.logs import training_seconds


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = write_dataset(str(tmp_path_factory.mktemp("got10k")), "got10k", 3, 12, seed=5,
                         frame_size=(240, 180))
    out = tmp_path_factory.mktemp("run")
    train_chain(preset("smoke"), ["teacher", "xnor", "rbsf"], load_sequences(str(root), "train"),
                out)
    return out


def summary(tmp_path, names, partial=False):
    scores = {n: {"success_auc": 0.5 + i / 10, "precision_20": 0.7, "sr_50": 0.6, "fps": 3.0}
              for i, n in enumerate(names)}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"dataset": "custom", "partial": partial, "trackers": scores}))
    return path


def test_ships_each_stage_compact_with_its_budget_and_scores(run, tmp_path):
    report = summary(tmp_path, ["SiamFC", "XNOR-SF", "RB-SF"])
    weights = tmp_path / "weights"
    assert main(["--run", str(run), "--report", f"held={report}", "--weights-dir",
                 str(weights)]) == 0
    facts = json.loads((weights / "weights.json").read_text())
    config = preset("smoke")
    for file, stage, kind in [("siamfc.pt", "teacher", "fp"), ("xnor.pt", "xnor", "xnor"),
                              ("rbsf.pt", "rbsf", "rbconv")]:
        model = facts["models"][file]
        schedule = config.stage(stage)
        assert model["budget"]["pairs"] == schedule.epochs * schedule.pairs_per_epoch
        assert model["kind"] == kind and model["init"] is None
        assert model["scores"]["held"]["success_auc"] == json.loads(
            report.read_text())["trackers"][model["name"]]["success_auc"]
        shipped, trained = load_model(weights / file), load_model(run / stage / "last.pt")
        z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 239, 239) * 255
        with torch.no_grad():
            a, b = shipped.eval()(z, x), trained.eval()(z, x)
        assert (a - b).abs().max() <= 1e-2 * b.abs().max()
        assert load_checkpoint(weights / file)["source"] == str(run / stage / "last.pt")


def test_refuses_a_report_without_a_model_or_a_partial_one(run, tmp_path, capsys):
    weights = tmp_path / "weights"
    with pytest.raises(ShipError, match="has no RB-SF"):
        ship(run, {"held": summary(tmp_path, ["SiamFC", "XNOR-SF"])}, weights)
    with pytest.raises(ShipError, match="partial"):
        ship(run, {"held": summary(tmp_path, ["SiamFC", "XNOR-SF", "RB-SF"], partial=True)},
             weights)
    assert main(["--run", str(run), "--report", f"held={tmp_path / 'none.json'}",
                 "--weights-dir", str(weights)]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert not (weights / "siamfc.pt").exists()


def test_refuses_an_unfinished_stage(tmp_path):
    root = write_dataset(str(tmp_path / "got10k"), "got10k", 2, 12, seed=5, frame_size=(240, 180))
    run = tmp_path / "run"
    with pytest.raises(Interrupted):
        train_chain(preset("smoke"), ["teacher"], load_sequences(str(root), "train"), run,
                    max_steps=1)
    with pytest.raises(ShipError, match="unfinished"):
        ship(run, {}, tmp_path / "weights")


def test_shipping_some_stages_keeps_the_others_files_and_facts(run, tmp_path):
    weights = tmp_path / "weights"
    ship(run, {"held": summary(tmp_path, ["SiamFC", "XNOR-SF", "RB-SF"])}, weights)
    before = json.loads((weights / "weights.json").read_text())["models"]
    teacher_bytes = (weights / "siamfc.pt").read_bytes()
    (weights / "rbsf.pt").write_bytes(b"stale")
    later = tmp_path / "later"
    later.mkdir()
    assert main(["--run", str(run), "--report", f"held={summary(later, ['XNOR-SF', 'RB-SF'])}",
                 "--weights-dir", str(weights), "--stages", "xnor,rbsf"]) == 0
    after = json.loads((weights / "weights.json").read_text())["models"]
    assert after["siamfc.pt"] == before["siamfc.pt"]
    assert (weights / "siamfc.pt").read_bytes() == teacher_bytes
    assert after["rbsf.pt"]["scores"]["held"]["success_auc"] == 0.6     # the later report's
    assert load_checkpoint(weights / "rbsf.pt")["source"] == str(run / "rbsf" / "last.pt")
    (weights / "weights.json").write_text("{")
    with pytest.raises(ShipError, match="cannot be read"):
        ship(run, {}, weights, ("rbsf",))


def test_an_unknown_stage_is_one_error_line(run, tmp_path, capsys):
    assert main(["--run", str(run), "--weights-dir", str(tmp_path / "w"),
                 "--stages", "xnor,student"]) == 2
    assert capsys.readouterr().err == ("error: --stages wants names from teacher, xnor, rbsf, "
                                       "got 'xnor,student'\n")
    assert not (tmp_path / "w").exists()


def test_a_slim_copy_ships_the_same_weights_and_refuses_to_resume(run, tmp_path, capsys):
    slim = tmp_path / "slim"
    slim.mkdir()                       # gpu_chain.sh's OUT already holds its chain.log
    assert slim_main([str(run), str(slim)]) == 0
    out = capsys.readouterr().out
    for stage in ("teacher", "xnor", "rbsf"):
        full, small = load_checkpoint(run / stage / "last.pt"), load_checkpoint(
            slim / stage / "last.pt")
        pairs, seconds = full["budget"]["pairs_seen"], training_seconds(run / stage / "log.csv")
        assert (f"{stage}: step {full['step']}, finished, {pairs} pairs in {seconds:.0f} s "
                f"({pairs / seconds:.1f} pairs/s) -> {slim / stage / 'last.pt'}") in out
        assert set(full) - set(small) >= {"opt_w", "rng"} and small["finished"]
        assert (slim / stage / "log.csv").read_bytes() == (run / stage / "log.csv").read_bytes()
    shipped = {}
    for name, source in (("full", run), ("slim", slim)):
        weights = tmp_path / f"weights-{name}"
        ship(source, {}, weights)
        shipped[name] = {f: load_checkpoint(weights / f)["model"]
                         for f in ("siamfc.pt", "xnor.pt", "rbsf.pt")}
    for file, state in shipped["full"].items():
        assert all(torch.equal(state[k], shipped["slim"][file][k]) for k in state)

    root = write_dataset(str(tmp_path / "got10k"), "got10k", 2, 12, seed=5, frame_size=(240, 180))
    sequences = load_sequences(str(root), "train")
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train_chain(preset("smoke"), ["teacher"], sequences, cut, max_steps=1)
    assert slim_main([str(cut), str(tmp_path / "cut-slim")]) == 0
    assert "unfinished teacher training" in capsys.readouterr().out
    with pytest.raises(TrainingError, match="slim copy"):
        train_chain(preset("smoke"), ["teacher"], sequences, tmp_path / "cut-slim", resume=True)
    assert slim_main([str(tmp_path / "nothing"), str(tmp_path / "x")]) == 2
    assert "holds no <stage>/last.pt" in capsys.readouterr().err
    assert slim_main([str(run), str(run)]) == 2
    assert "would replace the run's checkpoints" in capsys.readouterr().err


def test_training_seconds_add_up_the_last_elapsed_value_before_each_restart(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("step,elapsed_s\r\n1,2.0\r\n2,5.0\r\n3,1.5\r\n4,4.0\r\n")  # resumed at step 3
    assert training_seconds(log) == 9.0
    assert training_seconds(tmp_path / "missing.csv") is None
