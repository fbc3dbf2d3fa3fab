"""Checking a ``--device`` argument before any work starts."""
from __future__ import annotations

import torch


def check_device(name: str) -> str:
    """``name`` when PyTorch can use that device here; ``ValueError`` saying what to pass instead."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}; pass cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but PyTorch sees no usable GPU here; "
                             f"pass --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} asked for, but only {torch.cuda.device_count()} "
                             f"GPU(s) are visible")
    elif device.type != "cpu":
        raise ValueError(f"device {name!r} is not supported; pass cpu, cuda or cuda:N")
    return name
