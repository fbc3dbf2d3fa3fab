"""Which binary weights training changed: the share of each binarized layer's weights whose sign
differs between SiamFC checkpoints.

    python -m experiments.sign_agreement data/weights/xnor.pt data/weights/rbsf.pt \\
        runs/x/rbsf/last.pt=fine-tuned --base data/weights/siamfc.pt --out runs/signs

Compares conv2..conv5, the layers XNOR-SF and RB-SF binarize, of every ``CHECKPOINT[=LABEL]``
with ``--base``. Any SiamFC checkpoint of the same width serves, a full-precision teacher's
too: its weights binarize the same way (a weight >= 0 is +1). Students start from their
teacher's weights, so a student that still holds its teacher's signs after training has learned
only its scales, batch norms and conv1; ``sign_flips`` in a training log shows the same step by
step. Prints a markdown table; ``--out`` also writes ``sign_agreement.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from experiments import run_record_job
from rbsf.binary import binarizes_to_plus, sign_changes
from rbsf.checkpoint import load_checkpoint, model_from_checkpoint
from rbsf.deploy.packed import is_packed
from rbsf.errors import RBSFError
from rbsf.models.siamfc import TAP_LAYERS


class SignError(RBSFError, ValueError):
    """A checkpoint whose binarized layers cannot be compared with the base's."""


def layer_signs(path: Path) -> Dict[str, torch.Tensor]:
    """Whether each weight of conv2..conv5 of the SiamFC checkpoint at ``path`` binarizes to +1."""
    data = load_checkpoint(path)
    if is_packed(data):
        raise SignError(f"{path} is a packed model, which keeps no latent weights; compare the "
                        f".pt file it was exported from")
    net = model_from_checkpoint(data, str(path))
    return {name: binarizes_to_plus(getattr(net.backbone, name)[0].weight) for name in TAP_LAYERS}


def changed_shares(base: Dict[str, torch.Tensor], other: Dict[str, torch.Tensor],
                   name: str) -> Dict[str, float]:
    """Per layer and over all four, the share of weights whose sign differs from ``base``."""
    shares, changed, total = {}, 0, 0
    for layer, signs in base.items():
        if other[layer].shape != signs.shape:
            raise SignError(f"{name}: {layer} is {tuple(other[layer].shape)}, the base's "
                            f"{tuple(signs.shape)}; compare checkpoints of one width")
        count = sign_changes([signs], [other[layer]])
        shares[layer] = count / signs.numel()
        changed, total = changed + count, total + signs.numel()
    shares["all"] = changed / total
    return shares


def markdown(rows: Dict[str, Dict[str, float]], base: str) -> str:
    """The shares of ``rows`` (name -> ``changed_shares``) as a markdown table."""
    columns = list(TAP_LAYERS) + ["all"]
    lines = [f"Share of binary weights whose sign differs from {base}:", "",
             "| checkpoint | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, shares in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * shares[c]:.2f} %" for c in columns)
                     + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT[=LABEL]",
                        help="SiamFC checkpoints (.pt) to compare with --base")
    parser.add_argument("--base", type=Path, required=True,
                        help="the checkpoint they are compared with (e.g. the teacher the "
                             "students started from)")
    parser.add_argument("--out", type=Path, help="folder for sign_agreement.json and .md")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def build() -> Tuple[dict, str]:
        base = layer_signs(args.base)
        rows: Dict[str, Dict[str, float]] = {}
        for spec in args.checkpoints:
            path, _, label = spec.partition("=")
            name = label or path
            if name in rows:
                raise SignError(f"two checkpoints are named {name!r}; label one as PATH=LABEL")
            rows[name] = changed_shares(base, layer_signs(Path(path)), path)
        return {"base": str(args.base), "shares": rows}, markdown(rows, str(args.base))
    return run_record_job(args.out, "sign_agreement", build)


if __name__ == "__main__":
    sys.exit(main())
