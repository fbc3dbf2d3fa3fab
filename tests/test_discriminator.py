"""The student's adversarial term: values and gradients against hand-computed formulas."""
import math

import pytest
import torch
import torch.nn as nn

from rbsf.discriminator import GENERATOR_LOSSES, Discriminator, generator_loss


class LogitOf(nn.Module):
    """A stand-in discriminator whose logit is the sample's first feature."""

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors[:, 0]


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


@pytest.mark.parametrize("logit", [-12.0, -3.0, 0.0, 2.5])
def test_values_and_logit_gradients_match_the_formulas(logit):
    d = sigmoid(logit)
    expected = {"paper": (0.5 * (1 - d) ** 2, -d * (1 - d) ** 2),
                "nonsaturating": (-math.log(d), -(1 - d))}
    for form in GENERATOR_LOSSES:
        fake = torch.tensor([[logit]], dtype=torch.float64, requires_grad=True)
        loss = generator_loss(LogitOf(), fake, form)
        loss.backward()
        value, grad = expected[form]
        assert loss.item() == pytest.approx(value, rel=1e-9), form
        assert fake.grad[0, 0].item() == pytest.approx(grad, rel=1e-9, abs=1e-15), form


def test_paper_form_stops_teaching_once_the_discriminator_wins():
    """With D(T) ~ 0 the paper's term is at its maximum 1/2 and its gradient ~ 0, while the
    non-saturating term still pulls the student's features with a unit-size logit gradient."""
    torch.manual_seed(0)
    disc = Discriminator(8, hidden=16).double()
    fake = torch.randn(64, 8, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        disc.net[-1].bias.fill_(-15.0)     # a discriminator sure that every sample is fake
    grads = {}
    for form in GENERATOR_LOSSES:
        fake.grad = None
        loss = generator_loss(disc, fake, form)
        loss.backward()
        grads[form] = fake.grad.norm().item()
        if form == "paper":
            assert loss.item() == pytest.approx(0.5, abs=1e-5)
    assert grads["paper"] < 1e-4 * grads["nonsaturating"], grads


def test_unknown_form_is_refused():
    with pytest.raises(ValueError, match="nonsaturating"):
        generator_loss(LogitOf(), torch.zeros(2, 1), "hinge")
