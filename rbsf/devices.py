"""Checking a ``--device`` argument before any work starts, and the threads of pool workers."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import cv2
import torch

from rbsf.errors import RBSFError


class DeviceError(RBSFError, ValueError):
    """A ``--device`` this machine cannot run on."""


def check_device(name: str) -> str:
    """``name`` when PyTorch can use that device here; ``DeviceError`` saying what to pass
    instead."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}; pass cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asked for, but PyTorch sees no usable GPU here; "
                             f"pass --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} asked for, but only {torch.cuda.device_count()} "
                             f"GPU(s) are visible")
    elif device.type != "cpu":
        raise DeviceError(f"device {name!r} is not supported; pass cpu, cuda or cuda:N")
    return name


def exact_float32_on_gpu() -> None:
    """Turn off TF32 for CUDA convolutions and matrix products (PyTorch enables it for cuDNN
    convolutions by default). Binary networks take the sign of conv outputs; TF32's 10-bit
    mantissa flips signs near zero, so tracking on a GPU would drift from the CPU's boxes."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


@contextmanager
def exact_float32() -> Iterator[None]:
    """``exact_float32_on_gpu`` for the duration of a block; the TF32 settings are restored
    afterwards (so training that follows keeps its fast TF32 convolutions)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    exact_float32_on_gpu()
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def fork_safe_opencv() -> None:
    """Run OpenCV without its thread pool in this process. Call it first in a pool worker: the
    pool does not survive a fork, and a worker forked from a parent that used it can hang in it
    (opencv/opencv#5150); the workers share the cores already."""
    cv2.setNumThreads(0)
