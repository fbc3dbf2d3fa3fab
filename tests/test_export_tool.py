"""tools/export.py: packs a binary checkpoint, and refuses outputs onto its input or unwritable."""
import os

import pytest
import torch
from helpers import assert_clear_error, run_in_process

from rbsf.checkpoint import load_model, model_payload
from rbsf.deploy import save_packed
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from tools import export


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    net = SiamFCNet("rbconv", width=0.25)
    save_atomic(model_payload(net), folder / "rbsf.pt")
    save_atomic(model_payload(SiamFCNet("fp", width=0.25)), folder / "fp.pt")
    save_atomic(model_payload(net, stage="rbsf", finished=False, epoch=1, step=3,
                              train_config={"stages": {"rbsf": {"epochs": 4}}}),
                folder / "last.pt")
    save_packed(net, folder / "rbsf.packed")
    return folder


@pytest.fixture
def tool(capsys):
    return lambda *args: run_in_process(export.main, args, capsys)


def _contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_packs_and_checks_the_response(weights, tool, tmp_path):
    out = tmp_path / "deep" / "rbsf.packed"
    proc = tool(weights / "rbsf.pt", out)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout and "max |response difference|" in proc.stdout
    assert load_model(out).kind == "rbconv" and proc.stderr == ""


def test_output_onto_the_checkpoint_is_refused(weights, tool, tmp_path):
    """It used to replace the source checkpoint with the packed model (exit 0)."""
    before = _contents(weights)
    os.symlink(weights / "rbsf.pt", tmp_path / "link.pt")
    for output in (weights / "rbsf.pt", weights / "." / "rbsf.pt", tmp_path / "link.pt"):
        assert_clear_error(tool(weights / "rbsf.pt", output, "--no-check"), "is the checkpoint",
                           "choose another path")
    assert _contents(weights) == before


def test_unwritable_output_is_refused_before_packing(weights, tool, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("mine")
    assert_clear_error(tool(weights / "rbsf.pt", tmp_path / "folder"), "is a folder")
    assert_clear_error(tool(weights / "rbsf.pt", tmp_path / "file" / "x.packed"),
                       "is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
    assert not list((tmp_path / "folder").iterdir()) and (tmp_path / "file").read_text() == "mine"


def test_models_that_cannot_be_packed_are_one_clear_line(weights, tool, tmp_path):
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    assert_clear_error(tool(weights / "fp.pt", tmp_path / "o.packed"), "only binary")
    assert_clear_error(tool(weights / "rbsf.packed", tmp_path / "o.packed"), "already packed")
    assert_clear_error(tool(tmp_path / "corrupt.pt", tmp_path / "o.packed"), "corrupt")
    assert_clear_error(tool(tmp_path / "none.pt", tmp_path / "o.packed"), "not found")
    assert not (tmp_path / "o.packed").exists()


def test_an_unfinished_checkpoint_is_named_as_such(weights, tool, tmp_path):
    proc = tool(weights / "last.pt", tmp_path / "o.packed", "--no-check")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ")
    assert "unfinished rbsf training: epoch 1 of 4, step 3" in lines[0]
