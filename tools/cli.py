"""What every tool shares: exit codes, the one error line, Ctrl-C, and option value checks.

Contract: bad input ends in one line ``error: <what is wrong and how to fix it>`` on stderr
and exit code 2, before any long work; Ctrl-C (or a job's own stop) ends in one
``interrupted: ...`` line and exit code 130, with the work done so far kept.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, List, Optional, Sequence

from rbsf.errors import Interrupted, RBSFError
from tools import quiet_start

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the tools' contract for a bad option: one ``error:`` line, exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def fail(message: str) -> int:
    """Print the error line; returns the bad-input exit code."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_tool(main: Callable[[Optional[List[str]]], int], argv: Optional[List[str]] = None,
             interrupted_hint: str = "") -> int:
    """``main(argv)`` with the library's errors turned into the error line (exit 2) and Ctrl-C
    into the interrupted line (exit 130); ``interrupted_hint`` says how to continue. Always
    returns the exit code, also for argparse's own exits (so tests can call it in-process)."""
    quiet_start.hand_back()
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    except RBSFError as exc:
        return fail(str(exc))
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"interrupted{': ' + interrupted_hint if interrupted_hint else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _number(kind: type, low: float, low_inclusive: bool, what: str,
            below: float = math.inf) -> Callable[[str], object]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        if value < low or (value == low and not low_inclusive) or value >= below:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


positive_int = _number(int, 1, True, "an integer >= 1")
non_negative_int = _number(int, 0, True, "an integer >= 0")
positive_float = _number(float, 0.0, False, "a number > 0")
non_negative_float = _number(float, 0.0, True, "a number >= 0")
share = _number(float, 0.0, True, "a share in [0, 1) such as 0.3", below=1.0)


def split_list(text: str) -> List[str]:
    """The items of a comma-separated option value, stripped, without empty items or repeats."""
    return list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))


def choose(text: str, allowed: Sequence[str], option: str) -> List[str]:
    """``split_list(text)``, each item one of ``allowed``; otherwise ``RBSFError`` with the
    option's name and the valid choices."""
    items = split_list(text)
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise RBSFError(f"{option} wants names from {', '.join(allowed)}, got {text!r}")
    return items
