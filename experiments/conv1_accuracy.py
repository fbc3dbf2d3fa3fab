"""What the 8-bit conv1 (``PackedSiamFC.conv1_mode = "int8"``) changes against the exact one.

Only conv1's weights are rounded (the pixels are uint8 already), and conv1 only feeds the signs
that conv2 sees, so the first measure is the share of those signs that flip; then the response
maps, and the tracker's boxes on a real sequence (IoU between the two trackers' boxes, success
AUC of each against the ground truth).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, Sequence

import cv2
import numpy as np
import torch

from rbsf.crops import box_center, crop_and_resize, exemplar_crop_size
from rbsf.data.sequences import load_sequences
from rbsf.deploy.engine import apply_post
from rbsf.deploy.packed import CONV1_MODES, PackedSiamFC
from rbsf.eval.metrics import iou, otb_overall, otb_sequence
from rbsf.models.siamfc import xcorr
from trackers.siamfc import SiamFCTracker


@contextmanager
def conv1_mode(net: PackedSiamFC, mode: str) -> Iterator[PackedSiamFC]:
    """``net`` with conv1 in ``mode`` for the ``with`` block, its own mode restored after."""
    previous, net.conv1_mode = net.conv1_mode, mode
    try:
        yield net
    finally:
        net.conv1_mode = previous


def _batch(crops: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(crops).astype(np.float32)).permute(0, 3, 1, 2)


def centre_crops(images: Sequence[np.ndarray], size: int = 255) -> torch.Tensor:
    """The largest centred square of each uint8 RGB image, resized to ``size``: N x 3 x size x
    size float (0-255 integers, as the tracker's crops)."""
    return _batch([crop_and_resize(im, ((im.shape[1] - 1) / 2, (im.shape[0] - 1) / 2),
                                   min(im.shape[:2]), size) for im in images])


def target_crops(images: Sequence[np.ndarray], boxes: Sequence[Sequence[float]],
                 size: int) -> torch.Tensor:
    """The tracker's crops around each (x, y, w, h) box: exemplars for ``size`` 127, search
    images for 255 (context 0.5, same scale)."""
    return _batch([crop_and_resize(im, box_center(b), exemplar_crop_size(*b[2:]) * size / 127,
                                   size) for im, b in zip(images, boxes)])


@torch.no_grad()
def sign_flip_share(net: PackedSiamFC, x: torch.Tensor) -> float:
    """Share of conv2's binarised inputs (signs after conv1, its pooling and batch norm) that
    differ between conv1 modes fp32 and int8, on images ``x`` (N x 3 x H x W, 0-255)."""
    signs = []
    for mode in ("fp32", "int8"):
        with conv1_mode(net, mode):
            signs.append(apply_post(net.stem(x), net.conv1_post) < 0)
    return (signs[0] != signs[1]).double().mean().item()


@torch.no_grad()
def response_difference(net: PackedSiamFC, z: torch.Tensor, x: torch.Tensor) -> Dict[str, float]:
    """Response maps of exemplar ``z`` (1 x 3 x 127 x 127) on searches ``x`` in both modes:
    largest difference relative to the exact map's range, and share of maps whose peak moves."""
    maps = []
    for mode in ("fp32", "int8"):
        with conv1_mode(net, mode):
            maps.append(xcorr(net.backbone(z), net.backbone(x)).flatten(1) * net.out_scale)
    exact, fast = maps
    spread = (exact.max(1).values - exact.min(1).values).clamp_min(1e-12)
    return {"max_relative": ((fast - exact).abs().max(1).values / spread).max().item(),
            "peak_moved": (exact.argmax(1) != fast.argmax(1)).double().mean().item()}


def track(net: PackedSiamFC, frames: Sequence[np.ndarray], box: Sequence[float]) -> np.ndarray:
    """Boxes of the SiamFC tracker with ``net`` over ``frames`` (frame 0: ``box``)."""
    tracker = SiamFCTracker(net)
    tracker.init(frames[0], box)
    return np.array([box] + [tracker.update(frame) for frame in frames[1:]], dtype=np.float64)


def compare_tracking(net: PackedSiamFC, frames: Sequence[np.ndarray],
                     groundtruth: np.ndarray) -> Dict[str, float]:
    """Track ``frames`` in both conv1 modes: mean IoU between the two trackers' boxes (frames
    2..N) and each one's OTB success AUC against ``groundtruth``."""
    boxes = {}
    for mode in ("fp32", "int8"):
        with conv1_mode(net, mode):
            boxes[mode] = track(net, frames, groundtruth[0])
    return {"boxes_iou": float(iou(boxes["fp32"][1:], boxes["int8"][1:]).mean()),
            **{f"auc_{mode}": otb_sequence(b, groundtruth)["success_auc"]
               for mode, b in boxes.items()}}


def heldout_comparison(emulated, packed: PackedSiamFC, root: str,
                       modes: Sequence[str] = CONV1_MODES) -> Dict[str, Dict[str, float]]:
    """Track every sequence under ``root`` with the float-emulated binary network and with the
    packed model in each conv1 mode. Per tracker: OTB success AUC and precision@20 (curves
    averaged over sequences), and for the packed modes how many sequences give boxes identical
    to the float-emulated tracker's and the mean IoU between the two trackers' boxes."""
    sequences = load_sequences(root)
    trackers = {"float-emulated": emulated}
    trackers.update({f"packed-{mode}": packed for mode in modes})
    boxes: Dict[str, list] = {name: [] for name in trackers}
    scores: Dict[str, list] = {name: [] for name in trackers}
    for seq in sequences:
        frames = [cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB) for path in seq.frames]
        for name, net in trackers.items():
            mode = name[len("packed-"):] if name.startswith("packed-") else packed.conv1_mode
            with conv1_mode(packed, mode):
                boxes[name].append(track(net, frames, seq.boxes[0]))
            scores[name].append(otb_sequence(boxes[name][-1], seq.boxes))
    result = {}
    for name in trackers:
        overall = otb_overall(scores[name], [])
        result[name] = {"success_auc": overall["success_auc"],
                        "precision_20": overall["precision_20"], "sequences": len(sequences)}
        if name != "float-emulated":
            pairs = list(zip(boxes[name], boxes["float-emulated"]))
            result[name]["identical_sequences"] = sum(np.array_equal(a, b) for a, b in pairs)
            result[name]["iou_with_emulated"] = float(np.mean(
                [iou(a[1:], b[1:]).mean() for a, b in pairs]))
    return result


def main(argv=None) -> None:
    """``python -m experiments.conv1_accuracy --root DIR``: the held-out comparison as JSON."""
    import argparse
    import json
    from rbsf.checkpoint import load_model
    from rbsf.deploy.packed import pack_model
    parser = argparse.ArgumentParser(description=heldout_comparison.__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="dataset root of held-out sequences")
    parser.add_argument("--weights", default="data/weights/rbsf.pt",
                        help="binary checkpoint (float-emulated); packed from it")
    args = parser.parse_args(argv)
    emulated = load_model(args.weights)
    print(json.dumps(heldout_comparison(emulated, pack_model(emulated), args.root), indent=1))


if __name__ == "__main__":
    main()
