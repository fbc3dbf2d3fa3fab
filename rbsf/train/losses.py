"""Task loss of SiamFC: balanced logistic loss on the response map."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def balanced_logistic_loss(response: torch.Tensor, labels: torch.Tensor,
                           weights: torch.Tensor) -> torch.Tensor:
    """Weighted BCE-with-logits; ``weights`` of one map sum to 1 (positives 0.5, negatives 0.5).

    Averaged over the batch, so a constant response gives ln 2.
    """
    labels = labels.expand_as(response)
    weights = weights.expand_as(response)
    per_map = F.binary_cross_entropy_with_logits(response, labels, weights, reduction="none")
    return per_map.sum() / response.size(0)
