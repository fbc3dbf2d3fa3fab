"""Scores of a SiamFC net on held-out training-style pairs: a low-noise check of the model itself.

Tracking scores of a handful of sequences move by 0.05 when one sequence is lost. The balanced
logistic loss (the task loss L_S of training) on a fixed set of a few hundred held-out pairs
measures how well the net separates the target from its surroundings with far less noise, and
needs no tracker. Per net:

* ``pair_loss``: mean balanced logistic loss over the pairs (lower is better);
* ``teacher_similarity`` (given a teacher): how close the net's feature maps are to the
  teacher's at every binarized layer, what RB-SF's discriminators judge: the correlation of the
  two channel vectors at each position of the exemplar and search maps (their cosine after
  each is centred over its channels; like the discriminators' standardised input, blind to
  scale and offset), averaged over positions and pairs (``per_layer``), then over the layers.

Every net sees the same pairs (``held_out_pairs``: a fixed seed, independent of training).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence as Seq

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from rbsf.data import PairConfig, PairDataset, Sequence, pair_labels
from rbsf.devices import exact_float32
from rbsf.models.siamfc import TAP_LAYERS, SiamFCNet
from rbsf.train.losses import balanced_logistic_loss

PAIR_SEED = 12345


def held_out_pairs(sequences: Seq[Sequence], count: int, exemplar_size: int = 127,
                   instance_size: int = 255, search_size: int = 239) -> PairDataset:
    """``count`` pairs from ``sequences``, cropped like training pairs, always the same ones.

    Frames are filtered like training frames except for the absolute box size (any target of
    at least one pixel side counts): the tracker is scored on small targets too.
    """
    config = PairConfig(exemplar_size=exemplar_size, instance_size=instance_size,
                        search_size=search_size, min_area=1.0, min_side=1.0)
    return PairDataset(sequences, config, count, seed=PAIR_SEED)


def channel_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per position (N x H x W), how the channel vectors of two N x C x H x W maps correlate."""
    return F.cosine_similarity(a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True),
                               dim=1)


@torch.no_grad()
@exact_float32()
def pair_scores(nets: Mapping[str, SiamFCNet], pairs: PairDataset, device: str = "cpu",
                batch_size: int = 16, teacher: Optional[SiamFCNet] = None,
                workers: int = 0) -> Dict[str, Dict[str, object]]:
    """Per net (in eval mode): ``pair_loss`` over every pair of ``pairs``; with ``teacher``,
    also ``teacher_similarity`` and its ``per_layer`` values (see the module doc). Each batch
    of pairs is read once (by ``workers`` loader processes) and seen by every net; the teacher,
    when it is also one of ``nets``, runs once per batch. On a GPU
    the convolutions run in exact float32 (no TF32), like the tracker's."""
    nets = {name: net.to(device).eval() for name, net in nets.items()}
    if teacher is not None:
        teacher = teacher.to(device).eval()
    loss_sum = dict.fromkeys(nets, 0.0)
    similarity = {name: dict.fromkeys(TAP_LAYERS, 0.0) for name in nets}
    count = 0
    for z, x, positive in DataLoader(pairs, batch_size=batch_size, shuffle=False,
                                     num_workers=workers):
        z, x, positive = z.to(device), x.to(device), positive.to(device)
        n = z.size(0)
        teacher_out = None if teacher is None else teacher.forward_taps(z, x)
        teacher_taps = None if teacher_out is None else teacher_out[1]
        for name, net in nets.items():
            response, taps = teacher_out if net is teacher else net.forward_taps(z, x)
            labels, weights = pair_labels(positive, response.size(-1))
            loss = balanced_logistic_loss(response, labels, weights)
            loss_sum[name] += loss.item() * n
            for layer in TAP_LAYERS if teacher_taps is not None else ():
                similarity[name][layer] += sum(
                    channel_correlation(mine, theirs).mean().item() * n / 2
                    for mine, theirs in zip(taps[layer], teacher_taps[layer]))
        count += n
    scores = {}
    for name in nets:
        scores[name] = {"pair_loss": loss_sum[name] / count}
        if teacher is not None:
            per_layer = {layer: value / count for layer, value in similarity[name].items()}
            scores[name]["teacher_similarity"] = sum(per_layer.values()) / len(per_layer)
            scores[name]["per_layer"] = per_layer
    return scores
