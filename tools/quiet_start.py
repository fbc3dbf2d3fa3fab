"""Imported first by every tool script: Ctrl-C while the tool is still loading its libraries
(torch alone takes seconds) exits with code 130 and one line instead of a KeyboardInterrupt
traceback. Nothing has been done yet at that point, so the process ends at once.
``tools.cli.run_tool`` gives Ctrl-C back to Python's own handler when the tool's work starts.
Imported by anything but a tool script run as a program (tests, ``-m``), or where Ctrl-C is
ignored (a background job of a shell), it changes nothing."""
import os
import signal
import sys
from pathlib import Path


def interrupted_while_loading(signum, frame) -> None:
    """The SIGINT handler while a tool loads."""
    sys.stderr.write("interrupted: stopped while loading, before any work; nothing was changed\n")
    sys.stderr.flush()
    os._exit(130)


def hand_back() -> None:
    """Give Ctrl-C back to Python's own handler (KeyboardInterrupt) if this module took it."""
    if signal.getsignal(signal.SIGINT) is interrupted_while_loading:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if (sys.argv and Path(sys.argv[0]).resolve().parent == Path(__file__).resolve().parent
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
    signal.signal(signal.SIGINT, interrupted_while_loading)
