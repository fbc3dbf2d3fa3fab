"""Held-out pair scores: hand-computed responses, fixed pairs, trained nets against untrained ones."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from rbsf.checkpoint import load_model
from rbsf.data import balanced_labels, load_sequences
from rbsf.data.synthetic import write_dataset
from rbsf.eval.pair_scores import held_out_pairs, pair_scores
from rbsf.models import SiamFCNet
from rbsf.models.siamfc import TAP_LAYERS

WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "weights"
RESPONSE = 15     # search 239 -> 15 x 15 response


class FixedResponse(nn.Module):
    """A stand-in net that answers every pair with the same response map (and no taps)."""

    def __init__(self, response: torch.Tensor):
        super().__init__()
        self.response = response

    def forward_taps(self, z: torch.Tensor, x: torch.Tensor):
        return self.response.expand(z.size(0), 1, RESPONSE, RESPONSE), {}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = write_dataset(str(tmp_path_factory.mktemp("otb")), "otb", 3, 12, seed=5,
                         frame_size=(240, 180))
    return held_out_pairs(load_sequences(str(root)), 24)


def test_constant_response_gives_ln2(pairs):
    flat = FixedResponse(torch.zeros(1, 1, RESPONSE, RESPONSE))
    scores = pair_scores({"flat": flat}, pairs, batch_size=5)
    assert scores == {"flat": {"pair_loss": pytest.approx(math.log(2), rel=1e-6)}}


def test_label_shaped_response_by_hand(pairs):
    labels, _ = balanced_labels(RESPONSE)
    a = 3.0
    response = torch.where(labels > 0, torch.tensor(a), torch.tensor(-a))
    scores = pair_scores({"labels": FixedResponse(response)}, pairs, batch_size=7)
    # every cell is right with margin a: the per-cell loss is log(1 + e^-a), weights sum to 1
    assert scores["labels"]["pair_loss"] == pytest.approx(math.log1p(math.exp(-a)), rel=1e-6)


def test_same_pairs_every_time(pairs):
    first, second = pairs[3], held_out_pairs(pairs.sequences, 24)[3]
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_trained_teacher_beats_an_untrained_net(pairs):
    torch.manual_seed(0)
    scores = pair_scores({"trained": load_model(WEIGHTS / "siamfc.pt"),
                          "untrained": SiamFCNet("fp")}, pairs)
    assert scores["trained"]["pair_loss"] < 0.6 < 5 < scores["untrained"]["pair_loss"], scores


def test_teacher_similarity_of_itself_and_of_its_students(pairs):
    teacher = load_model(WEIGHTS / "siamfc.pt")
    torch.manual_seed(0)
    nets = {"itself": teacher, "stranger": SiamFCNet("rbconv"),
            "student": load_model(WEIGHTS / "rbsf.pt")}
    scores = pair_scores(nets, pairs, teacher=teacher, workers=2)
    assert scores["itself"]["teacher_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert set(scores["itself"]["per_layer"]) == set(TAP_LAYERS)
    stranger, student = (scores[k]["teacher_similarity"] for k in ("stranger", "student"))
    assert stranger < 0.2 < student < 0.9, scores
    alone = pair_scores({"student": nets["student"]}, pairs, batch_size=5, teacher=teacher)
    assert alone["student"]["teacher_similarity"] == pytest.approx(student, abs=1e-5)
