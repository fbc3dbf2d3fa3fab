"""Crossing outcomes (rbsf.eval.crossings) on hand-made boxes, and experiments/crossing_gate.py
on a tiny crossing set in the layout `prepare_data.py ... --crossing` writes."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from experiments import crossing_gate
from rbsf.data.synthetic import CROSSER_FILE
from rbsf.eval.crossings import crossing_outcome, paired, tally

FRAMES = 30
FAR = [400.0, 400.0, 10.0, 10.0]


def scene():
    """A still 40 x 40 target at (100, 100) and a look-alike of its size sliding right 7 px a
    frame from x = 10: their boxes overlap in frames 8-18 (7t + 50 > 100 and 7t + 10 < 140)."""
    truth = np.tile([100.0, 100.0, 40.0, 40.0], (FRAMES, 1))
    crosser = np.array([[10.0 + 7 * t, 100.0, 40.0, 40.0] for t in range(FRAMES)])
    return truth, crosser


def test_the_scene_crosses_where_computed_by_hand():
    truth, crosser = scene()
    touching = [t for t in range(FRAMES) if crosser[t, 0] + 40 > 100 and crosser[t, 0] < 140]
    assert touching == list(range(8, 19))


def test_a_tracker_on_the_target_keeps_it():
    truth, crosser = scene()
    assert crossing_outcome(truth, crosser, truth) == "kept"


def test_a_tracker_that_rides_off_on_the_look_alike_switched():
    truth, crosser = scene()
    boxes = truth.copy()
    boxes[12:] = crosser[12:]
    assert crossing_outcome(truth, crosser, boxes) == "switched"


def test_a_tracker_on_neither_after_the_crossing_lost_it():
    truth, crosser = scene()
    boxes = truth.copy()
    boxes[19:] = FAR
    assert crossing_outcome(truth, crosser, boxes) == "lost"


def test_a_tracker_off_target_before_the_crossing_lost_it_before():
    truth, crosser = scene()
    boxes = truth.copy()
    boxes[7] = FAR
    assert crossing_outcome(truth, crosser, boxes) == "lost before"
    boxes[7] = crosser[7] + [5, 0, 0, 0]        # nearer the look-alike than the target
    assert crossing_outcome(truth, crosser, boxes) == "lost before"


def test_only_the_window_after_the_crossing_decides():
    truth, crosser = scene()
    boxes = truth.copy()
    boxes[24:] = FAR                  # on target for frames 19-23, then gone
    assert crossing_outcome(truth, crosser, boxes, window=5) == "kept"
    assert crossing_outcome(truth, crosser, boxes, window=11) == "lost"   # 5 of 11


def test_frames_without_the_look_alike_in_view_do_not_count():
    truth, crosser = scene()
    crosser[19:24] = np.nan
    boxes = truth.copy()
    boxes[19:24] = FAR                # off target only while the look-alike is out of view
    assert crossing_outcome(truth, crosser, boxes, window=6) == "kept"


@pytest.mark.parametrize("case", ["never", "from the start", "out of view after"])
def test_sequences_without_a_seen_crossing_say_nothing(case):
    truth, crosser = scene()
    if case == "never":
        crosser[:, 1] = 300.0
    elif case == "from the start":
        crosser[:] = truth
    else:
        crosser[19:] = np.nan
    assert crossing_outcome(truth, crosser, truth) == "no crossing"


def test_tally_and_paired_counts():
    mine = {"a": "kept", "b": "switched", "c": "kept", "d": "lost before", "e": "no crossing"}
    base = {"a": "kept", "b": "kept", "c": "lost", "d": "kept", "e": "kept"}
    counts = tally(mine)
    assert (counts["kept"], counts["switched"], counts["met"]) == (2, 1, 3)
    assert counts["kept_share"] == pytest.approx(2 / 3)
    assert paired(mine, base) == {"both_met": 3, "kept_only_here": 1, "kept_only_by_base": 1}


def write_crossing_set(root: Path) -> np.ndarray:
    """One OTB-layout sequence ``Tune0001`` of the scene, with its look-alike file."""
    truth, crosser = scene()
    seq = root / "Tune0001"
    (seq / "img").mkdir(parents=True)
    for t in range(FRAMES):
        cv2.imwrite(str(seq / "img" / f"{t + 1:04d}.jpg"), np.zeros((240, 320, 3), np.uint8))
    np.savetxt(seq / "groundtruth_rect.txt", truth, fmt="%.0f", delimiter=",")
    np.savetxt(seq / CROSSER_FILE, crosser, fmt="%.0f", delimiter=",")
    return truth


def write_result(results: Path, tracker: str, boxes: np.ndarray) -> None:
    (results / tracker).mkdir(parents=True)
    np.savetxt(results / tracker / "Tune0001.txt", boxes, fmt="%.1f", delimiter=",")


def test_the_gate_counts_each_trackers_outcomes_against_a_base(tmp_path, capsys):
    truth = write_crossing_set(tmp_path / "cross")
    _, crosser = scene()
    switching = truth.copy()
    switching[12:] = crosser[12:]
    write_result(tmp_path / "res" / "custom", "steady", truth)
    write_result(tmp_path / "res" / "custom", "fickle", switching)
    code = crossing_gate.main(["--root", str(tmp_path / "cross"), str(tmp_path / "res" / "custom"),
                               "--base", "steady", "--out", str(tmp_path / "gate")])
    assert code == 0
    table = capsys.readouterr().out
    assert "| fickle | 0 | 1 | 0 | 0 | 0 | 0.00 | 0 / 1 |" in table
    record = json.loads((tmp_path / "gate" / "crossings.json").read_text())
    assert record["outcomes"] == {"fickle": {"Tune0001": "switched"},
                                  "steady": {"Tune0001": "kept"}}
    assert (tmp_path / "gate" / "crossings.md").read_text() == table.rstrip("\n") + "\n"
    assert (tmp_path / "gate" / "crossings.png").read_bytes()[:4] == b"\x89PNG"


def test_the_gate_says_what_is_wrong_in_one_line(tmp_path, capsys):
    truth = write_crossing_set(tmp_path / "cross")
    results = tmp_path / "res" / "custom"
    write_result(results, "steady", truth)

    def error(*argv):
        assert crossing_gate.main([str(a) for a in argv]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        return lines[0]

    assert "does not exist" in error("--root", tmp_path / "none", results)
    assert "does not exist" in error("--root", tmp_path / "cross", tmp_path / "nothing")
    assert "label one" in error("--root", tmp_path / "cross", results, results)
    assert "no tracker 'other'" in error("--root", tmp_path / "cross", results, "--base", "other")
    assert "--window" in error("--root", tmp_path / "cross", results, "--window", "0")
    (tmp_path / "cross" / "Tune0001" / CROSSER_FILE).unlink()
    assert "not a crossing set" in error("--root", tmp_path / "cross", results)
