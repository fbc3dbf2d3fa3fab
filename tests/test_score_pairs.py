"""experiments.score_pairs: every net on the same fixed pairs of every root, the teacher's
similarity to itself exactly one, bad roots refused before any scoring."""
import json

import torch

from experiments import score_pairs
from rbsf.checkpoint import model_payload
from rbsf.data.synthetic import write_dataset
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet


def _weights(folder):
    for name, kind in (("siamfc", "fp"), ("xnor", "xnor"), ("rbsf", "rbconv")):
        torch.manual_seed(len(name))
        save_atomic(model_payload(SiamFCNet(kind, width=0.25)), folder / f"{name}.pt")
    return folder


def test_scores_every_net_on_every_root(tmp_path):
    weights = _weights(tmp_path / "w")
    roots = [write_dataset(str(tmp_path / f"set{i}"), "otb", 2, 6, seed=i, frame_size=(160, 120))
             for i in (1, 2)]
    out = tmp_path / "out"
    argv = ["--weights-dir", str(weights), "--pairs", "6", "--out", str(out)]
    assert score_pairs.main(argv + [arg for r in roots for arg in ("--root", str(r))]) == 0
    record = json.loads((out / "pair_scores.json").read_text())
    assert list(record["scores"]) == [str(r) for r in roots]
    for per_net in record["scores"].values():
        assert list(per_net) == ["SiamFC", "XNOR-SF", "RB-SF"]
        assert abs(per_net["SiamFC"]["teacher_similarity"] - 1.0) < 1e-5
        assert all(0 < s["pair_loss"] < 10 and s["teacher_similarity"] < 0.999
                   for name, s in per_net.items() if name != "SiamFC")
    assert "| SiamFC | XNOR-SF | RB-SF |" in (out / "pair_scores.md").read_text()


def test_a_missing_root_is_one_clear_error(tmp_path, capsys):
    weights = _weights(tmp_path / "w")
    code = score_pairs.main(["--root", str(tmp_path / "nowhere"), "--weights-dir", str(weights),
                             "--out", str(tmp_path / "out")])
    assert code == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
