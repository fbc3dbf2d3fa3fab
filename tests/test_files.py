"""rbsf.files: atomic writes keep the umask's mode, and the output checks every tool makes
before its work starts."""
import os
import stat

import pytest

from rbsf.files import OutputPathError, atomic_open, check_outputs, check_writable


def test_atomic_file_gets_the_mode_an_ordinary_open_gives(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "a.txt") as handle:
            handle.write("x")
        with open(tmp_path / "b.txt", "w") as handle:
            handle.write("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644


def test_interrupted_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path) as handle:
            handle.write("new, half")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["keep.txt"]


def test_an_output_that_is_an_input_is_refused(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"frames")
    with pytest.raises(OutputPathError, match="--output .* is the input video"):
        check_outputs({"--output": tmp_path / "." / "clip.mp4"}, {"input video": video})
    os.symlink(video, tmp_path / "link.mp4")
    with pytest.raises(OutputPathError, match="is the input video"):
        check_outputs({"--output": tmp_path / "link.mp4"}, {"input video": video})
    assert video.read_bytes() == b"frames"


def test_two_outputs_on_one_path_are_refused(tmp_path):
    with pytest.raises(OutputPathError, match="--output and --boxes are both"):
        check_outputs({"--output": tmp_path / "x", "--boxes": tmp_path / "x"}, {})


def test_unwritable_locations_are_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "out.txt", "--out")
    with pytest.raises(OutputPathError, match="is a folder"):
        check_writable(tmp_path, "--out")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(OutputPathError, match="no write permission"):
            check_writable(locked / "new" / "out.txt", "--out")
    finally:
        locked.chmod(0o700)
    check_writable(tmp_path / "new" / "deeper" / "out.txt", "--out")
