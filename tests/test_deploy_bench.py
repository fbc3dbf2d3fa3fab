"""tools/bench.py: one tiny run end to end (JSON report), and clear errors on bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rbsf.checkpoint import model_payload
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet

ROOT = Path(__file__).resolve().parents[1]


def _tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_tiny_run_reports_every_model(tmp_path):
    save_atomic(model_payload(SiamFCNet("fp", width=0.25)), tmp_path / "siamfc.pt")
    save_atomic(model_payload(SiamFCNet("xnor", width=0.25)), tmp_path / "rbsf.pt")
    done = _tool("--weights", tmp_path, "--frames", 2, "--rounds", 1, "--no-memory", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    models = {"fp", "binary", "packed", "packed-int8"}
    assert set(report["tracker_fps"]) == set(report["file_bytes"]) == models
    assert all(v > 0 for v in report["tracker_fps"].values())
    assert report["file_bytes"]["packed"] * 8 < report["file_bytes"]["binary"]
    assert list(report["backbone_ms_per_image"]["packed"]) == [
        "conv1", "conv2", "conv3", "conv4", "conv5", "total"]
    fps = report["tracker_fps"]
    assert report["speedup_vs_fp"] == pytest.approx({m: fps[m] / fps["fp"] for m in fps})
    done = _tool("--weights", tmp_path, "--frames", 2, "--rounds", 1, "--no-memory", "--json",
                 "--conv1", "fp32")
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["tracker_fps"]) == {"fp", "binary", "packed"}


def test_bad_input_is_one_line(tmp_path):
    done = _tool("--weights", tmp_path)
    assert done.returncode == 2 and "siamfc.pt" in done.stderr
    assert done.stderr.strip().count("\n") == 0
    done = _tool("--box", "1,2,3")
    assert done.returncode == 2 and "--box" in done.stderr
    done = _tool("--conv1", "int4")
    assert done.returncode == 2 and "--conv1" in done.stderr
