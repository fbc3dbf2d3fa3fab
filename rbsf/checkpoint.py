"""Checkpoint files: atomic writes, clear errors on corrupt files, models rebuilt from them.

Our format is a dict saved by ``torch.save`` with at least::

    {"format": "rbsf", "model_config": {"kind", "c_mode", "width"}, "model": state_dict, ...}

Training checkpoints add optimiser, scheduler, discriminator and RNG states. A plain state dict
in the public siamfc-pytorch layout (``backbone.conv1.0.weight`` ...) is read as a
full-precision SiamFC.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from rbsf.deploy.packed import PackedSiamFC, is_packed
from rbsf.errors import RBSFError
from rbsf.models.siamfc import SiamFCNet

FORMAT = "rbsf"
# what only resuming a training checkpoint needs (``slim_checkpoint`` leaves it out)
RESUME_STATE = ("opt_w", "sched_w", "opt_c", "sched_c", "discs", "opt_d", "rng")
PathLike = Union[str, os.PathLike]


class CheckpointError(RBSFError, RuntimeError):
    """A checkpoint file is missing, unreadable or not a SiamFC checkpoint."""


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint; raise :class:`CheckpointError` with a one-line reason when it fails."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (train one with tools/train_rbsf.py "
                              f"or pass the path of an existing .pt file)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise CheckpointError(f"checkpoint {path} is corrupt or not a PyTorch file "
                              f"({type(exc).__name__}); delete it and retrain or re-copy "
                              f"it") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(data).__name__}, not a dict")
    return data


def is_siamfc_state_dict(data: Dict[str, Any]) -> bool:
    """True for a bare state dict in the siamfc-pytorch key layout."""
    return any(k.replace("module.", "", 1).startswith("backbone.conv1.0.") for k in data)


def model_from_checkpoint(data: Dict[str, Any], source: str = "checkpoint") -> SiamFCNet:
    """Rebuild the SiamFC network stored in ``data`` (our format or siamfc-pytorch's)."""
    if is_packed(data):  # packed 1-bit model: rbsf.deploy's engine
        try:
            return PackedSiamFC.from_payload(data)
        except ValueError as exc:
            raise CheckpointError(f"{source}: {exc}") from exc
    if data.get("format") == FORMAT:
        config = dict(data["model_config"])
        net = SiamFCNet(**config)
        try:
            net.load_state_dict(data["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"{source}: weights do not match its model config {config}: "
                                  f"{str(exc).splitlines()[0]}") from exc
        return net
    if is_siamfc_state_dict(data):
        conv1 = next(v for k, v in data.items() if k.endswith("backbone.conv1.0.weight"))
        net = SiamFCNet("fp", width=conv1.shape[0] / 96)
        try:
            net.load_teacher_state(data)
        except KeyError as exc:
            raise CheckpointError(f"{source}: {exc}") from exc
        return net
    raise CheckpointError(f"{source} is neither an RB-SF checkpoint nor a siamfc-pytorch "
                          f"state dict")


def unfinished_note(data: Dict[str, Any]) -> Optional[str]:
    """For a training checkpoint whose run has not finished, a note saying how far it got
    (``"unfinished teacher training: epoch 3 of 10, step 120"``); None otherwise (finished
    runs, shipped weights, packed models, foreign state dicts)."""
    if data.get("format") != FORMAT or data.get("finished", True):
        return None
    stage = data.get("stage", "?")
    epochs = data.get("train_config", {}).get("stages", {}).get(stage, {}).get("epochs", "?")
    epoch = data.get("epoch", "?")       # epochs done; a stop inside one is in the next
    if isinstance(epoch, int) and data.get("batch"):
        epoch += 1
    return (f"unfinished {stage} training: epoch {epoch} of {epochs}, step "
            f"{data.get('step', '?')}")


def load_model(path: PathLike) -> SiamFCNet:
    """Load a SiamFC network (any kind) from a checkpoint file, in eval mode."""
    net = model_from_checkpoint(load_checkpoint(path), str(path))
    return net.eval()


def slim_checkpoint(data: Dict[str, Any]) -> Dict[str, Any]:
    """A training checkpoint without what only resuming needs (optimiser, scheduler,
    discriminator and RNG states): the model and the facts of its training, about half the
    size. It loads as a model and ships like the full one, but cannot be resumed."""
    return {key: value for key, value in data.items() if key not in RESUME_STATE}


def model_payload(net: SiamFCNet, **extra: Any) -> Dict[str, Any]:
    """The minimal checkpoint of a model (what is shipped in ``data/weights``)."""
    return {"format": FORMAT, "model_config": net.config(), "model": net.state_dict(), **extra}
