"""rbsf.files.atomic_dir: a folder built by a job is complete or absent, whatever stops the job."""
import os

import pytest

from rbsf.files import OutputPathError, atomic_dir


def test_finished_folder_appears_whole(tmp_path):
    target = tmp_path / "data"
    with atomic_dir(target) as building:
        (building / "a.txt").write_text("a")
        assert not target.exists()
    assert sorted(os.listdir(target)) == ["a.txt"]
    assert os.listdir(tmp_path) == ["data"]


def test_interrupted_folder_leaves_nothing(tmp_path):
    target = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as building:
            (building / "list.txt").write_text("seq1\nseq2\n")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_an_empty_folder_is_filled_and_a_full_one_refused(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    with atomic_dir(target) as building:
        (building / "x").write_text("x")
    assert os.listdir(target) == ["x"]
    with pytest.raises(OutputPathError, match="not empty"):
        with atomic_dir(target):
            pass
    assert os.listdir(target) == ["x"]


def test_leftover_of_a_killed_job_is_cleaned(tmp_path):
    target = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as building:
            leftover = building
            raise KeyboardInterrupt
    # a kill (no cleanup) leaves the partial folder as it was while building
    leftover.mkdir()
    (leftover / ".rbsf-partial").write_text("")
    (leftover / "half.jpg").write_bytes(b"half")
    with atomic_dir(target) as building:
        assert building == leftover and os.listdir(building) == [".rbsf-partial"]
        (building / "whole.jpg").write_bytes(b"whole")
    assert os.listdir(target) == ["whole.jpg"]
    assert os.listdir(tmp_path) == ["data"]


def test_a_folder_of_the_user_on_the_partial_name_is_kept(tmp_path):
    mine = tmp_path / ".data.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="remove it"):
        with atomic_dir(tmp_path / "data"):
            pass
    assert (mine / "notes.txt").read_text() == "mine"
