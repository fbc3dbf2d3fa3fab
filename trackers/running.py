"""The running average that every online part of the tracker learns with."""
from __future__ import annotations

from typing import Optional, TypeVar

T = TypeVar("T")


def blend(old: Optional[T], new: T, rate: float) -> T:
    """``new`` when there is nothing yet, else the running average ``(1 - rate) old + rate new``
    (of arrays, tensors or numbers)."""
    return new if old is None else (1 - rate) * old + rate * new
