"""Per-layer discriminators of RBCN and their adversarial losses (DESIGN §2).

A discriminator sees *vectors*, so a feature map must be turned into samples. Two choices,
selected by ``mode``:

* ``"positions"`` (default): every spatial position of the exemplar and search maps gives one
  channel vector; ``samples`` of them are drawn at random per step. This keeps the local
  structure the tracker correlates on and gives many samples per image.
* ``"pooled"``: one global-average-pooled channel vector per image (exemplar and search).

With ``normalize=True`` (default) each vector is standardised over its channels (zero mean,
unit variance, no affine), so the discriminator judges the *pattern* of a feature vector and
cannot win on magnitude alone: the binary and real-valued maps legitimately differ in scale
(conv5 of the student is C* times an integer sum), and SiamFC's decision is scale-free.

The student's adversarial term has two forms (``GENERATOR_LOSSES``):

* ``"paper"``: 1/2 * ||1 - D(T)||^2 with D = sigmoid(logit), Eq. of RBCN. Its gradient with
  respect to the logit is -(1 - D)^2 * D, which vanishes when the discriminator wins (D -> 0):
  the term then sits at its maximum 1/2 and stops teaching the student.
* ``"nonsaturating"``: -log D(T) (Goodfellow et al. 2014). Its gradient -(1 - D) tends to -1
  when the discriminator wins, so the student keeps being pulled towards the teacher's maps.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

DISC_MODES = ("positions", "pooled")
GENERATOR_LOSSES = ("paper", "nonsaturating")


class Discriminator(nn.Module):
    """Four Linear + LeakyReLU blocks; the last Linear gives one logit (sigmoid is D)."""

    def __init__(self, in_features: int, hidden: int = 128, slope: float = 0.2):
        super().__init__()
        layers, width = [], in_features
        for _ in range(3):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.net(vectors).squeeze(-1)


def feature_vectors(maps: Iterable[torch.Tensor], mode: str = "positions",
                    samples: Optional[int] = 256, normalize: bool = True,
                    generator: Optional[torch.Generator] = None,
                    index: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Turn feature maps (N x C x H x W each) into discriminator samples (S x C).

    Returns the vectors and the row indices drawn, so the teacher and the student can be
    sampled at the same positions (pass ``index`` back in).
    """
    if mode not in DISC_MODES:
        raise ValueError(f"discriminator input mode must be one of {DISC_MODES}, got {mode!r}")
    if mode == "pooled":
        rows = torch.cat([m.mean(dim=(2, 3)) for m in maps])
    else:
        rows = torch.cat([m.permute(0, 2, 3, 1).reshape(-1, m.size(1)) for m in maps])
    if index is None:
        if mode == "positions" and samples is not None and samples < rows.size(0):
            index = torch.randperm(rows.size(0), generator=generator)[:samples]
        else:
            index = torch.arange(rows.size(0))
    rows = rows[index.to(rows.device)]
    if normalize:
        rows = F.layer_norm(rows, rows.shape[-1:])
    return rows, index


def discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Minus the discriminator's objective log D(R) + log(1 - D(T)), averaged over samples.

    Minimising this is gradient *ascent* on the objective of Algorithm 1.
    """
    real_logit, fake_logit = disc(real), disc(fake.detach())
    return (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
            + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))


def generator_loss(disc: nn.Module, fake: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """The student's adversarial term averaged over samples (lambda2 applied by the trainer):
    ``"paper"`` 1/2 * ||1 - D(T)||^2, or ``"nonsaturating"`` -log D(T) (see the module doc)."""
    if form not in GENERATOR_LOSSES:
        raise ValueError(f"generator loss must be one of {GENERATOR_LOSSES}, got {form!r}")
    logit = disc(fake)
    if form == "nonsaturating":
        return F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
    return 0.5 * (1 - torch.sigmoid(logit)).pow(2).mean()


def build_discriminators(channels: Dict[str, int], hidden: int = 128) -> nn.ModuleDict:
    """One discriminator per binarized layer, keyed by layer name."""
    return nn.ModuleDict({name: Discriminator(c, hidden) for name, c in channels.items()})
