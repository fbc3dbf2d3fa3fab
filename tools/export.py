"""Pack a trained binary SiamFC (XNOR or RB-SF) into the 1-bit model file of the CPU engine.

    python tools/export.py data/weights/rbsf.pt data/weights/rbsf_packed.pt

Binary weights take 1 bit each, batch norms are folded into per-channel scales and shifts,
conv1 stays real-valued. ``rbsf.checkpoint.load_model`` (and so the tracker) reads the packed
file like any other checkpoint. The tool checks that the packed model reproduces the source
model's response on a random exemplar/search pair and prints the sizes.
"""
from __future__ import annotations

import tools.quiet_start  # noqa: F401, I001 (first: a quiet Ctrl-C while torch loads)

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

from rbsf.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, unfinished_note
from rbsf.deploy import PackedSiamFC, pack_model, save_packed
from rbsf.files import check_outputs
from tools.cli import ArgumentParser, run_tool


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Write the packed 1-bit model file of a binary SiamFC checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("checkpoint", type=Path,
                        help="checkpoint of a binary SiamFC (kind xnor or rbconv, c_mode scalar)")
    parser.add_argument("output", type=Path, help="packed model file to write (.pt)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip comparing the packed model's response with the source model's")
    return parser.parse_args(argv)


def check(net, packed) -> float:
    """Largest response difference between the source and the packed model on random input."""
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(1, 3, 127, 127, generator=gen) * 255
    x = torch.rand(1, 3, 255, 255, generator=gen) * 255
    with torch.no_grad():
        return (net(z, x) - packed(z, x)).abs().max().item()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    check_outputs({"output": args.output}, {"checkpoint": args.checkpoint})
    data = load_checkpoint(args.checkpoint)
    net = model_from_checkpoint(data, str(args.checkpoint)).eval()
    if isinstance(net, PackedSiamFC):
        raise CheckpointError(f"{args.checkpoint} is already packed; give the .pt checkpoint it "
                              f"was exported from")
    note = unfinished_note(data)
    if note:
        print(f"warning: {args.checkpoint} is not a finished model ({note}); the packed file "
              f"does not record that", file=sys.stderr)
    try:
        packed = pack_model(net)
    except ValueError as exc:
        raise CheckpointError(f"{args.checkpoint}: {exc}") from exc
    source_bytes = args.checkpoint.stat().st_size
    save_packed(packed, args.output)
    packed_bytes = args.output.stat().st_size
    print(f"wrote {args.output}: {packed_bytes / 1e6:.3f} MB (source {source_bytes / 1e6:.3f} MB, "
          f"{source_bytes / packed_bytes:.1f}x smaller)")
    if not args.no_check:
        print(f"max |response difference| vs source model: {check(net, packed):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
