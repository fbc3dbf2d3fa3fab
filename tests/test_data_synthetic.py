"""Synthetic sequences: layouts read back by the got10k toolkit, exact ground truth, the tool."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from got10k.datasets import GOT10k, OTB, UAV123
from helpers import start_interruptible

from rbsf.data import load_sequences
from rbsf.errors import RBSFError
from rbsf.data.synthetic import (list_photos, load_photos, render_sequence, sequence_rng,
                                 write_dataset)

SIZE = (128, 96)
REPO = Path(__file__).resolve().parents[1]


def _same(seq, files, anno):
    assert [str(Path(f)) for f in seq.frames] == [str(Path(f)) for f in files]
    np.testing.assert_array_equal(np.isnan(seq.boxes), np.isnan(anno))
    np.testing.assert_allclose(np.nan_to_num(seq.boxes), np.nan_to_num(anno))


def test_got10k_layout_read_by_toolkit(tmp_path):
    root = write_dataset(tmp_path / "got", "got10k", 2, 6, seed=3, frame_size=SIZE)
    for subset in ("train", "val"):
        toolkit = GOT10k(str(root), subset=subset, return_meta=True)
        ours = load_sequences(str(root), subset)
        assert [s.name for s in ours] == toolkit.seq_names and len(ours) == 2
        for seq, (files, anno, meta) in zip(ours, toolkit):
            _same(seq, files, anno)
            assert len(files) == 6 and Path(files[0]).name == "00000001.jpg"
            np.testing.assert_array_equal(seq.visible, (meta["absence"] == 0) & (meta["cover"] > 0))
            np.testing.assert_array_equal(meta["absence"] == 1, meta["cover"] == 0)
            assert meta["resolution"] == "(128, 96)"
    test = GOT10k(str(root), subset="test")
    files, anno = test[0]
    assert anno.shape == (1, 4) and len(files) == 6
    train_first = np.loadtxt(root / "train" / "GOT-10k_Train_000001" / "groundtruth.txt",
                             delimiter=",")
    assert train_first.shape == (6, 4)


def test_otb_layout_read_by_toolkit(tmp_path):
    root = write_dataset(tmp_path / "otb", "otb", 2, 5, seed=1, frame_size=SIZE)
    toolkit = OTB(str(root), version="tb100", download=False)   # never downloads
    ours = load_sequences(str(root))
    assert [s.name for s in ours] == toolkit.seq_names == ["Basketball", "Biker"]
    for seq, (files, anno) in zip(ours, toolkit):
        _same(seq, files, anno)
        assert Path(files[0]).name == "0001.jpg"
        assert cv2.imread(files[0]).shape == (96, 128, 3)


def test_uav123_layout_read_by_toolkit(tmp_path):
    root = write_dataset(tmp_path / "uav", "uav123", 1, 2, seed=0, frame_size=(48, 36))
    toolkit = UAV123(str(root))
    ours = load_sequences(str(root))
    assert [s.name for s in ours] == toolkit.seq_names == ["uav6"]
    files, anno = toolkit[0]
    assert len(files) == 109 and Path(files[0]).name == "000001.jpg"
    _same(ours[0], files, anno)
    np.testing.assert_array_equal(ours[0].visible, ~np.isnan(anno).any(axis=1))


def _correlation(a, b):
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def _occluded_sequence_seed():
    """The first sequence seed whose rendering has both fully visible and absent frames."""
    photos = load_photos(list_photos())
    for seed in range(40):
        frames = list(render_sequence(sequence_rng(seed, 0, 0), photos, 40, SIZE))
        if any(f.absent for f in frames) and sum(f.visible > 0.99 for f in frames) >= 5:
            return seed, frames
    pytest.fail("no seed rendered a sequence with a full occlusion")


def test_ground_truth_matches_rendered_target(tmp_path):
    seed, rendered = _occluded_sequence_seed()
    root = write_dataset(tmp_path / "got", "got10k", 1, 40, seed=seed, frame_size=SIZE)
    seq_dir = root / "train" / "GOT-10k_Train_000001"
    boxes = np.loadtxt(seq_dir / "groundtruth.txt", delimiter=",")
    absence = np.loadtxt(seq_dir / "absence.label")
    np.testing.assert_array_equal(absence == 1, [f.absent for f in rendered])
    visible_r, absent_r = [], []
    for t, frame in enumerate(rendered):
        x, y, w, h = boxes[t].astype(int)
        mask = frame.target_alpha[y:y + h, x:x + w] > 0.99
        # the box is the tight box of the rendered target
        ys, xs = np.nonzero(frame.target_alpha > 0.5)
        assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
        if mask.sum() < 30 or frame.target_layer[y:y + h, x:x + w][mask].std() < 8:
            continue
        on_disk = cv2.cvtColor(cv2.imread(str(seq_dir / f"{t + 1:08d}.jpg")), cv2.COLOR_BGR2RGB)
        inside = _correlation(on_disk[y:y + h, x:x + w][mask],
                              frame.target_layer[y:y + h, x:x + w][mask])
        if frame.visible > 0.99:     # blur and noise of the frame lower it a little
            assert inside > 0.6, f"frame {t}: box pixels do not show the target (r={inside:.2f})"
            visible_r.append(inside)
        elif frame.absent:
            assert inside < 0.4, f"frame {t}: target marked absent but visible (r={inside:.2f})"
            absent_r.append(inside)
    assert len(visible_r) >= 3 and len(absent_r) >= 1 and np.median(visible_r) > 0.9


def test_same_seed_same_dataset_and_disjoint_photos(tmp_path):
    names = ["apple.jpg", "baboon.jpg", "board.jpg"]
    a = write_dataset(tmp_path / "a", "otb", 1, 3, seed=5, frame_size=SIZE, image_names=names)
    b = write_dataset(tmp_path / "b", "otb", 1, 3, seed=5, frame_size=SIZE, image_names=names)
    c = write_dataset(tmp_path / "c", "otb", 1, 3, seed=5, frame_size=SIZE,
                      image_names=["home.jpg", "orange.jpg"])
    for rel in ("Basketball/img/0003.jpg", "Basketball/groundtruth_rect.txt"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    assert ((a / "Basketball/img/0001.jpg").read_bytes()
            != (c / "Basketball/img/0001.jpg").read_bytes())
    with pytest.raises(RBSFError, match="not empty"):
        write_dataset(a, "otb", 1, 3, seed=5)
    with pytest.raises(ValueError, match="not found"):
        write_dataset(tmp_path / "d", "otb", 1, 3, seed=5, image_names=["nope.jpg", "apple.jpg"])


def _tree(root):
    return {p.relative_to(root): p.read_bytes()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def test_parallel_and_subset_writing_give_the_same_files(tmp_path):
    full = write_dataset(tmp_path / "full", "got10k", 2, 3, seed=3, frame_size=SIZE)
    train = write_dataset(tmp_path / "train", "got10k", 2, 3, seed=3, frame_size=SIZE,
                          subsets=("train",), workers=2)
    assert sorted(p.name for p in train.iterdir()) == ["train"]
    assert _tree(train / "train") == _tree(full / "train")
    with pytest.raises(ValueError, match="subsets must be among"):
        write_dataset(tmp_path / "bad", "got10k", 1, 3, seed=3, subsets=("training",))


def _tool():
    spec = importlib.util.spec_from_file_location("make_synthetic",
                                                  REPO / "tools" / "make_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_help_documents_every_option():
    help_text = subprocess.run([sys.executable, str(REPO / "tools" / "make_synthetic.py"),
                                "--help"],
                               capture_output=True, text=True, check=True).stdout
    for option in ("--layout", "--out", "--sequences", "--frames", "--seed", "--images",
                   "--image-names", "--size", "--quality", "--subsets", "--workers"):
        assert option in help_text


def test_tool_writes_and_rejects_bad_input(tmp_path, capsys):
    from tools.cli import run_tool
    tool = _tool()
    out = tmp_path / "o"
    assert tool.main(["--layout", "otb", "--out", str(out), "--sequences", "1", "--frames", "3",
                      "--size", "64x48"]) == 0
    assert (out / "Basketball" / "img" / "0003.jpg").is_file()
    assert tool.main(["--out", str(tmp_path / "g"), "--sequences", "2", "--frames", "3",
                      "--size", "64x48", "--subsets", "train,val", "--workers", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["train", "val"]
    assert run_tool(tool.main, ["--out", str(tmp_path / "x"), "--images",
                                str(tmp_path / "none")]) == 2
    assert "photo folder" in capsys.readouterr().err
    assert run_tool(tool.main, ["--layout", "otb", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_shipped_sample_and_photos():
    sample = REPO / "data" / "sample"
    toolkit = OTB(str(sample / "otb"), version="tb100", download=False)
    files, anno = toolkit[0]
    assert len(files) == len(anno) == 100
    assert sum(p.stat().st_size for p in (sample / "otb").rglob("*") if p.is_file()) < 2_000_000
    clip_boxes = np.loadtxt(sample / "clip_groundtruth.txt", delimiter=",")
    np.testing.assert_array_equal(clip_boxes, anno)
    video = cv2.VideoCapture(str(sample / "clip.mp4"))
    count, first = 0, None
    while True:
        ok, image = video.read()
        if not ok:
            break
        first = image if first is None else first
        count += 1
    assert count == 100 and first.shape == (240, 320, 3)
    assert np.abs(first.astype(int) - cv2.imread(files[0]).astype(int)).mean() < 6
    assert len(list_photos()) >= 12


def test_interrupted_writing_leaves_no_partial_dataset(tmp_path, monkeypatch):
    import rbsf.data.synthetic as synthetic
    written = []
    real_job = synthetic._write_job

    def job_then_ctrl_c(job):
        if len(written) == 2:
            raise KeyboardInterrupt
        real_job(job)
        written.append(job)

    monkeypatch.setattr(synthetic, "_write_job", job_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "data", "got10k", 4, 3, seed=0, frame_size=(48, 36),
                      subsets=("train",))
    assert len(written) == 2 and list(tmp_path.iterdir()) == []     # complete or absent
    monkeypatch.setattr(synthetic, "_write_job", real_job)
    root = write_dataset(tmp_path / "data", "got10k", 4, 3, seed=0, frame_size=(48, 36),
                         subsets=("train",))
    assert len(load_sequences(str(root))) == 4 and list(tmp_path.iterdir()) == [root]


def _wait_for(predicate, proc, seconds=120):
    import time
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None and not predicate():
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()


def test_tool_ctrl_c_is_one_line_and_leaves_no_folder(tmp_path):
    import signal
    out = tmp_path / "data"
    proc = start_interruptible([sys.executable, str(REPO / "tools" / "make_synthetic.py"),
                                "--out", str(out), "--sequences", "40", "--frames", "30",
                                "--size", "64x48", "--subsets", "train", "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any(p.name.endswith(".jpg") for p in tmp_path.rglob("*")), proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, phrase", [
    (["--sequences", "0"], "--sequences"), (["--frames", "1"], "2 frames"),
    (["--size", "16x16"], "at least 32"), (["--size", "0x-5"], "--size"),
    (["--workers", "0"], "--workers"), (["--workers", "-1"], "--workers"),
    (["--seed", "-1"], "--seed"), (["--quality", "0"], "--quality"),
    (["--subsets", ","], "subsets"), (["--layout", "uav123", "--sequences", "1000"], "at most"),
])
def test_tool_refuses_bad_values_before_writing(tmp_path, capsys, options, phrase):
    from tools.cli import run_tool
    code = run_tool(_tool().main, ["--out", str(tmp_path / "data"), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and phrase in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_tool_refuses_an_out_it_cannot_write(tmp_path, capsys):
    from tools.cli import run_tool
    (tmp_path / "file").write_text("mine")
    assert run_tool(_tool().main, ["--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert run_tool(_tool().main, ["--out", str(tmp_path / "file" / "data")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine"
