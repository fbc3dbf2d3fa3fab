"""experiments.size_oracle: its tracker column is what tools/eval.py scores, its oracle boxes
carry the true size around the tracker's own centre."""
import json

import numpy as np
import pytest
import torch

from experiments import size_oracle
from rbsf.checkpoint import model_payload
from rbsf.data import load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.eval.report import score_otb
from rbsf.eval.runner import make_jobs, run_jobs
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from trackers.registry import TrackerFactory


@pytest.fixture
def setup(tmp_path):
    root = write_dataset(str(tmp_path / "seqs"), "otb", 2, 6, seed=4, frame_size=(160, 120))
    torch.manual_seed(0)
    weights = tmp_path / "w" / "rbsf.pt"
    save_atomic(model_payload(SiamFCNet("rbconv", width=0.25)), weights)
    return tmp_path, root, weights


def test_tracker_column_equals_the_evaluation_and_the_oracle_keeps_true_sizes(setup):
    tmp_path, root, weights = setup
    out = tmp_path / "out"
    assert size_oracle.main(["--tracker", "rbsf", "--weights-dir", str(weights.parent),
                             "--params", "reference", "--root", str(root), "--out", str(out),
                             "--workers", "2"]) == 0
    record = json.loads((out / "size_oracle.json").read_text())
    sequences = load_sequences(str(root))
    factory = TrackerFactory("rbsf", str(weights), report_name="RB-SF")
    run_jobs(make_jobs({"RB-SF": factory}, sequences, tmp_path / "results"))
    evaluated = score_otb(tmp_path / "results", "RB-SF", sequences)
    assert record["tracker"]["success_auc"] == pytest.approx(evaluated["success_auc"])
    own = size_oracle.track(factory, sequences[0], oracle=False)
    told = size_oracle.track(factory, sequences[0], oracle=True)
    np.testing.assert_allclose(told[1:, 2:], sequences[0].boxes[1:, 2:])
    def centre(box):
        return box[:2] + (box[2:] - 1) / 2
    np.testing.assert_allclose(centre(told[1]), centre(own[1]))     # same centre on frame 1
    assert "| **success** |" in (out / "size_oracle.md").read_text()


def test_a_missing_root_is_one_clear_error(setup, capsys):
    tmp_path, _, weights = setup
    assert size_oracle.main(["--tracker", "rbsf", "--weights-dir", str(weights.parent),
                             "--root", str(tmp_path / "nowhere"), "--out",
                             str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err
