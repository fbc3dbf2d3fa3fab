"""experiments.box_sizes and metrics.size_ratio: box sides against true sides, by hand."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from experiments import box_sizes
from rbsf.eval.metrics import size_ratio

TRUTH = np.array([[10, 10, 40, 40]] * 6, dtype=np.float64)


def test_size_ratio_is_the_side_over_the_true_side():
    boxes = np.array([[0, 0, 40, 40], [5, 5, 20, 20], [0, 0, 10, 160], [0, 0, 80, 80]], float)
    truth = np.array([[0, 0, 40, 40], [0, 0, 40, 40], [0, 0, 40, 40], [0, 0, 0, 0]], float)
    np.testing.assert_allclose(size_ratio(boxes, truth), [1.0, 0.5, 1.0, np.nan])
    with pytest.raises(ValueError, match="differ in shape"):
        size_ratio(boxes[:2], truth)


def test_shares_count_frames_and_sequences_that_end_small():
    shrinking = np.array([1.0, 0.8, 0.4, 0.3, 0.2, np.nan])
    steady = np.array([1.0, 1.1, 2.5, 0.9, 1.0, 1.0])
    shares = box_sizes.size_shares([shrinking, steady], 0.5, 2.0, tail=3)
    assert shares["frames"] == 11
    assert shares["small_share"] == pytest.approx(3 / 11)
    assert shares["large_share"] == pytest.approx(1 / 11)
    assert shares["median_ratio"] == pytest.approx(1.0)
    assert shares["ending_small"] == 1 and shares["sequences"] == 2


def _write(root: Path, results: Path, tracker: str, boxes: np.ndarray) -> None:
    seq = root / "Seq01"
    if not seq.exists():
        (seq / "img").mkdir(parents=True)
        for t in range(len(TRUTH)):
            cv2.imwrite(str(seq / "img" / f"{t + 1:04d}.jpg"), np.zeros((96, 128, 3), np.uint8))
        np.savetxt(seq / "groundtruth_rect.txt", TRUTH, fmt="%.0f", delimiter=",")
    (results / tracker).mkdir(parents=True)
    np.savetxt(results / tracker / "Seq01.txt", boxes, fmt="%.1f", delimiter=",")


def test_the_driver_tables_each_tracker(tmp_path, capsys):
    shrunk = TRUTH.copy()
    shrunk[2:, 2:] = 10                                  # a quarter of the side from frame 2
    _write(tmp_path / "seqs", tmp_path / "res", "steady", TRUTH)
    _write(tmp_path / "seqs", tmp_path / "res", "shrinking", shrunk)
    code = box_sizes.main(["--root", str(tmp_path / "seqs"), str(tmp_path / "res"),
                           "--tail", "3", "--out", str(tmp_path / "out")])
    assert code == 0
    table = capsys.readouterr().out
    assert "| shrinking | 0.667 | 0.000 | 0.25 | 1 of 1 |" in table
    assert "| steady | 0.000 | 0.000 | 1.00 | 0 of 1 |" in table
    record = json.loads((tmp_path / "out" / "box_sizes.json").read_text())
    assert [row["tracker"] for row in record["rows"]] == ["shrinking", "steady"]


@pytest.mark.parametrize("args, message", [
    (["--small", "1.5"], "0 < --small < 1 < --large"),
    (["--tail", "0"], "--tail must be at least 1"),
])
def test_bad_options_and_folders_are_one_line(tmp_path, capsys, args, message):
    _write(tmp_path / "seqs", tmp_path / "res", "steady", TRUTH)
    assert box_sizes.main(["--root", str(tmp_path / "seqs"), str(tmp_path / "res"), *args]) == 2
    assert message in capsys.readouterr().err
    assert box_sizes.main(["--root", str(tmp_path / "none"), str(tmp_path / "res")]) == 2
    assert box_sizes.main(["--root", str(tmp_path / "seqs"), str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
