"""Ctrl-C while a tool is still loading torch: one line, exit code 130, no traceback."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import start_interruptible

ROOT = Path(__file__).resolve().parents[1]
TOOLS = sorted(p for p in (ROOT / "tools").glob("*.py")
               if "if __name__ == \"__main__\":" in p.read_text())


def test_every_tool_script_is_found():
    assert {p.stem for p in TOOLS} >= {"train_rbsf", "eval", "demo", "train_cls", "export"}


@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.stem)
def test_ctrl_c_while_loading_is_one_line(tool, tmp_path):
    proc = start_interruptible([sys.executable, str(tool), "--help"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)             # the interpreter is up; torch and the rest are still loading
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip(f"{tool.name} loaded and finished within 0.8 s: nothing to interrupt")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: ")
