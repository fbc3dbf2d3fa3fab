"""experiments.sign_agreement: shares of changed signs, counted by hand."""
import json

import torch
from helpers import assert_clear_error, run_in_process

from experiments import sign_agreement
from rbsf.checkpoint import model_payload
from rbsf.deploy.packed import save_packed
from rbsf.files import save_atomic
from rbsf.models import SiamFCNet


def _student(teacher: SiamFCNet, flips: dict) -> SiamFCNet:
    """An RB-SF student holding the teacher's weights, with the first ``flips[layer]`` weights
    of each layer negated."""
    student = SiamFCNet("rbconv", width=0.25)
    student.load_teacher_state(teacher.state_dict())
    with torch.no_grad():
        for layer, count in flips.items():
            getattr(student.backbone, layer)[0].weight.view(-1)[:count] *= -1
    return student


def test_shares_count_the_negated_weights_per_layer_and_overall(tmp_path, capsys):
    torch.manual_seed(0)
    teacher = SiamFCNet("fp", width=0.25)
    save_atomic(model_payload(teacher, stage="teacher", finished=True), tmp_path / "t.pt")
    flips = {"conv2": 10, "conv5": 3}
    save_atomic(model_payload(_student(teacher, flips), stage="rbsf", finished=True),
                tmp_path / "s.pt")
    proc = run_in_process(sign_agreement.main, [tmp_path / "s.pt", f"{tmp_path / 't.pt'}=same",
                                                "--base", tmp_path / "t.pt",
                                                "--out", tmp_path / "out"], capsys)
    assert proc.returncode == 0, proc.stderr
    shares = json.loads((tmp_path / "out" / "sign_agreement.json").read_text())["shares"]
    sizes = {layer: getattr(teacher.backbone, layer)[0].weight.numel()
             for layer in ("conv2", "conv3", "conv4", "conv5")}
    got = shares[str(tmp_path / "s.pt")]
    assert got["conv2"] == 10 / sizes["conv2"] and got["conv3"] == 0
    assert got["conv5"] == 3 / sizes["conv5"]
    assert got["all"] == 13 / sum(sizes.values())
    assert shares["same"]["all"] == 0
    assert "| same | 0.00 % |" in proc.stdout


def test_packed_models_and_other_widths_are_refused_in_one_line(tmp_path, capsys):
    torch.manual_seed(0)
    teacher = SiamFCNet("fp", width=0.25)
    save_atomic(model_payload(teacher, stage="teacher", finished=True), tmp_path / "t.pt")
    save_packed(_student(teacher, {}).eval(), tmp_path / "s.packed")
    save_atomic(model_payload(SiamFCNet("fp", width=0.5), stage="teacher", finished=True),
                tmp_path / "wide.pt")
    base = ["--base", tmp_path / "t.pt"]
    assert_clear_error(run_in_process(sign_agreement.main, [tmp_path / "s.packed", *base],
                                      capsys), "packed model", "the .pt file")
    assert_clear_error(run_in_process(sign_agreement.main, [tmp_path / "wide.pt", *base], capsys),
                       "conv2 is", "one width")
    assert_clear_error(run_in_process(sign_agreement.main, [tmp_path / "t.pt=x",
                                                            tmp_path / "t.pt=x", *base], capsys),
                       "two checkpoints are named 'x'")
