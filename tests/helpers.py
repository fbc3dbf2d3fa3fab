"""Helpers shared by the tests."""
import csv
import signal
import subprocess
import time
from pathlib import Path

import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


class PixelNet:
    """A 'network' whose embedding is the zero-mean, 8x8-pooled image: its cross-correlation
    peaks exactly at the true shift, so it checks the tracker's geometry without training."""

    out_scale = 1e-3

    def backbone(self, x):
        x = F.avg_pool2d(x, 8, 8)
        return x - x.mean(dim=(1, 2, 3), keepdim=True)


def assert_clear_error(proc, *phrases: str) -> None:
    """The bad-input contract of every tool: exit code 2, no traceback, and a last stderr line
    ``error: ...`` that names each of ``phrases``."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    for phrase in phrases:
        assert phrase in line, line


def run_in_process(main, args, capsys):
    """A tool's ``main`` through ``run_tool`` in this process (no interpreter start-up): its
    exit code and outputs, as a subprocess would report them."""
    from types import SimpleNamespace

    from tools.cli import run_tool

    code = run_tool(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def csv_rows(path: Path) -> list:
    """The rows of a CSV file with a header (a training log.csv, epochs.csv) as dicts."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _default_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_interruptible(args: list, **popen_options) -> subprocess.Popen:
    """Start a tool the way a terminal starts a command, so that Ctrl-C (SIGINT) reaches it:
    a test run started with SIGINT ignored (a script's background job, ``nohup ... &``) would
    otherwise hand that to the child, whose Python then never raises KeyboardInterrupt."""
    return subprocess.Popen(args, preexec_fn=_default_ctrl_c, **popen_options)


def ctrl_c_after_steps(args: list, log: Path, steps: int = 3) -> str:
    """Start a training tool, send it Ctrl-C (SIGINT) once its ``log`` has ``steps`` rows, and
    return its stderr after checking it exited with 130, the interrupted code."""
    proc = start_interruptible(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(csv_rows(log)) < steps):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    return stderr
