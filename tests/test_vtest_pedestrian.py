"""The demo's pedestrian in OpenCV's vtest.avi: the checkpoint file, and the shipped tracker on
him (run where the video is at hand: the cached opencv-doc source or the workplace's copy)."""
import numpy as np
import pytest

from rbsf.data.heldout import (VTEST_PEDESTRIAN, VTEST_PEDESTRIAN_BOX, VTEST_VIDEOS, ClipError,
                               read_checkpoints)
from rbsf.eval.metrics import centre_inside, iou
from rbsf.video import FrameSource
from trackers.registry import SHIPPED_WEIGHTS, build_tracker, params_file, tracker_params

VIDEO = next((path for path in VTEST_VIDEOS if path.is_file()), None)


def test_shipped_checkpoints():
    frames, boxes = read_checkpoints(VTEST_PEDESTRIAN)
    assert len(frames) == 23 and frames[0] == 0 and np.all(np.diff(frames) > 0)
    assert boxes.shape == (23, 4)
    # the first checkpoint is the demo's first box, as segmentation outlines it
    assert iou(boxes[:1], np.array([VTEST_PEDESTRIAN_BOX], float))[0] > 0.85


@pytest.mark.parametrize("text", ["", "0,1,2,3\n", "4,1,2,3,4\n2,1,2,3,4\n", "0,1,2,0,4\n",
                                  "0.5,1,2,3,4\n", "a,b,c,d,e\n"])
def test_bad_checkpoint_files(tmp_path, text):
    path = tmp_path / "checkpoints.txt"
    path.write_text("# a comment\n" + text)
    with pytest.raises(ClipError, match="checkpoints"):
        read_checkpoints(path)
    with pytest.raises(ClipError, match="cannot read"):
        read_checkpoints(tmp_path / "missing.txt")


@pytest.mark.skipif(VIDEO is None, reason="vtest.avi not at hand (prepare_data.py fetch opencv-doc)")
def test_shipped_tracker_follows_the_pedestrian_through_the_crossings():
    """The issue's must-show: with the shipped weights and settings the demo's tracker stays on
    him when he walks past the man in jeans (frame ~106) and the man in the striped jumper
    (~140). Without the motion model it switched to the man in jeans for good (16 of 23)."""
    checked, truth = read_checkpoints(VTEST_PEDESTRIAN)
    params = tracker_params(params_file(SHIPPED_WEIGHTS))
    tracker = build_tracker("packed-int8", params=params)
    source = FrameSource.open_file(VIDEO)
    boxes = [np.array(VTEST_PEDESTRIAN_BOX, float)]
    for index, rgb in source.frames():
        if index == 0:
            tracker.init(rgb, VTEST_PEDESTRIAN_BOX)
        else:
            boxes.append(tracker.update(rgb))
        if index == checked[-1]:
            break
    source.close()
    inside = centre_inside(np.array(boxes)[checked], truth)
    assert inside.all(), f"off the pedestrian at frames {checked[~inside].tolist()}"
