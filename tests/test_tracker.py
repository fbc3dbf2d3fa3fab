"""SiamFCTracker: geometry, image types, border / tiny / huge boxes, checkpoints, toolkit track()."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from rbsf.checkpoint import model_payload
from rbsf.crops import box_center, crop_and_resize
from rbsf.data.synthetic import write_dataset
from rbsf.deploy import save_packed
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from tests.helpers import PixelNet
from trackers import SiamFCTracker
from trackers.registry import (TrackerError, TrackerFactory, build_tracker, name_for_weights,
                               tracker_params)
from trackers.running import blend
from trackers.siamfc import ParamsError, TrackerParams, distractor_cells, load_params

PHOTO = Path(__file__).resolve().parents[1] / "data" / "photos" / "baboon.jpg"


def _photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)


def _panned_frames(n=8, size=(200, 150), step=(4, -3)):
    """Windows of a photo moving by ``step`` px per frame: the scene shifts by -step."""
    photo, (w, h) = _photo(), size
    return [photo[80 + step[1] * f:80 + step[1] * f + h, 100 + step[0] * f:100 + step[0] * f + w]
            for f in range(n)]


def test_follows_a_translating_scene():
    tracker = SiamFCTracker(PixelNet())
    box = np.array([80.0, 55.0, 40.0, 40.0])
    frames = _panned_frames()
    tracker.init(frames[0], box)
    for f, frame in enumerate(frames[1:], start=1):
        out = tracker.update(frame)
        expected = np.array(box_center(box)) - [4 * f, -3 * f]
        assert np.linalg.norm(np.array(box_center(out)) - expected) < 4.0, f"frame {f}: {out}"


def test_image_types_agree():
    tracker = SiamFCTracker(PixelNet())
    frames = _panned_frames(4)
    box = [80, 55, 40, 40]

    def run(convert):
        tracker.init(convert(frames[0]), box)
        return np.array([tracker.update(convert(f)) for f in frames[1:]])

    as_array = run(lambda a: a)
    np.testing.assert_array_equal(as_array, run(lambda a: a))
    np.testing.assert_array_equal(as_array, run(Image.fromarray))
    rgba = run(lambda a: Image.fromarray(a).convert("RGBA"))
    np.testing.assert_array_equal(as_array, rgba)
    gray_pil = run(lambda a: Image.fromarray(a).convert("L"))
    gray_np = run(lambda a: np.asarray(Image.fromarray(a).convert("L")))
    np.testing.assert_array_equal(gray_pil, gray_np)
    assert np.all(np.isfinite(gray_pil))


@pytest.mark.parametrize("box", [[-15, -10, 30, 25], [190, 140, 30, 30], [100, 70, 1, 1],
                                 [-300, -300, 900, 800], [0, 0, 200, 150]],
                         ids=["top-left-border", "bottom-right-border", "one-pixel", "huge",
                              "whole-image"])
@pytest.mark.parametrize("scale_filter_lr", [0.0, 0.025], ids=["siamfc-scales", "scale-filter"])
def test_border_tiny_and_huge_boxes_stay_usable(box, scale_filter_lr):
    tracker = SiamFCTracker(PixelNet(), params=TrackerParams(scale_filter_lr=scale_filter_lr))
    frames = _panned_frames(4)
    tracker.init(frames[0], box)
    for frame in frames[1:]:
        x, y, w, h = tracker.update(frame)
        cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
        assert 0 <= cx <= 199 and 0 <= cy <= 149
        assert tracker.params.min_size <= w <= 200 and tracker.params.min_size <= h <= 150


def test_scale_limit_keeps_the_size_near_the_first_box():
    frames, box = _panned_frames(4), [80.0, 55.0, 40.0, 30.0]
    fixed = SiamFCTracker(PixelNet(), params=TrackerParams(scale_limit=1.0, scale_step=1.2))
    fixed.init(frames[0], box)
    for frame in frames[1:]:
        np.testing.assert_allclose(fixed.update(frame)[2:], box[2:])
    limited = SiamFCTracker(PixelNet(), params=TrackerParams(scale_limit=2.0))
    limited.init(frames[0], box)
    limited.set_size(3.0, 3.0)
    np.testing.assert_allclose(limited.target_size, [20.0, 15.0])
    limited.set_size(150.0, 100.0)
    np.testing.assert_allclose(limited.target_size, [80.0, 60.0])
    with pytest.raises(ParamsError, match="scale_limit"):
        TrackerParams(scale_limit=0.5)


@pytest.mark.parametrize("box, message", [
    ([300, 10, 20, 20], "entirely outside"), ([-50, 10, 20, 20], "entirely outside"),
    ([10, 10, 0, 20], "non-positive"), ([10, np.nan, 20, 20], "4 finite numbers"),
    ([10, 10, 20], "4 finite numbers")])
def test_bad_initial_box_is_a_clear_error(box, message):
    tracker = SiamFCTracker(PixelNet())
    with pytest.raises(ValueError, match=message):
        tracker.init(_panned_frames(1)[0], box)


def test_update_before_init_is_an_error():
    with pytest.raises(RuntimeError, match="before init"):
        SiamFCTracker(PixelNet()).update(_panned_frames(1)[0])


@pytest.mark.parametrize("tracker_name, kind, name", [("siamfc", "fp", "SiamFC"),
                                                     ("xnor", "xnor", "XNOR-SF"),
                                                     ("rbsf", "rbconv", "RB-SF")])
def test_registry_names_trackers_by_kind(tmp_path, tracker_name, kind, name):
    path = tmp_path / f"{kind}.pt"
    save_atomic(model_payload(SiamFCNet(kind, width=0.25)), path)
    tracker = build_tracker(tracker_name, path)
    assert tracker.name == name and tracker.is_deterministic
    assert TrackerFactory(tracker_name, str(path), report_name="mine")().name == "mine"


def test_registry_names_the_tracker_of_a_weights_file(tmp_path):
    for kind, name in (("fp", "siamfc"), ("xnor", "xnor"), ("rbconv", "rbsf")):
        save_atomic(model_payload(SiamFCNet(kind, width=0.25)), tmp_path / f"{kind}.pt")
        assert name_for_weights(tmp_path / f"{kind}.pt") == name
    save_packed(SiamFCNet("rbconv", width=0.25).eval(), tmp_path / "m.packed")
    assert name_for_weights(tmp_path / "m.packed") == "packed"


@pytest.mark.parametrize("tracker_name", ["siamfc", "xnor", "packed"])
def test_registry_refuses_weights_of_another_kind(tmp_path, tracker_name):
    """Results are never filed under the name of a model they do not come from."""
    path = tmp_path / "rbsf.pt"
    save_atomic(model_payload(SiamFCNet("rbconv", width=0.25)), path)
    with pytest.raises(TrackerError, match="holds a RB-SF model.*use tracker 'rbsf'"):
        build_tracker(tracker_name, path)


def test_toolkit_track_on_a_generated_sequence(tmp_path):
    """got10k's own Tracker.track (PIL frames from disk) runs our tracker end to end."""
    root = write_dataset(str(tmp_path / "otb"), "otb", 1, 6, seed=3, frame_size=(128, 96))
    seq_dir = next(p for p in root.iterdir() if p.is_dir())
    frames = sorted(str(p) for p in (seq_dir / "img").glob("*.jpg"))
    gt = np.loadtxt(seq_dir / "groundtruth_rect.txt", delimiter=",")
    torch.manual_seed(0)
    tracker = SiamFCTracker(SiamFCNet("rbconv", width=0.25), name="RB-SF")
    boxes, times = tracker.track(frames, gt[0])
    assert boxes.shape == (6, 4) and np.all(np.isfinite(boxes)) and np.all(times > 0)
    np.testing.assert_array_equal(boxes[0], gt[0])
    again, _ = tracker.track(frames, gt[0])
    np.testing.assert_array_equal(boxes, again)


def test_template_update_blends_the_new_exemplar_at_its_rate():
    frames = _panned_frames(3)
    box = np.array([80.0, 55.0, 40.0, 40.0])
    fixed = SiamFCTracker(PixelNet())
    moving = SiamFCTracker(PixelNet(), params=TrackerParams(template_lr=0.25))
    for tracker in (fixed, moving):
        tracker.init(frames[0], box)
    start = fixed.kernel.clone()
    out = moving.update(frames[1])
    assert np.allclose(out, fixed.update(frames[1]))       # this frame located alike
    assert torch.equal(fixed.kernel, start)
    # the new exemplar, cut where the tracker now puts the target, at weight 0.25
    new = SiamFCTracker(PixelNet())
    new.init(frames[1], out)
    assert torch.allclose(moving.kernel, 0.75 * start + 0.25 * new.kernel, atol=1e-5)


@pytest.mark.parametrize("context", [0.0, 0.5])
def test_exemplar_context_fades_the_pixels_outside_the_box(context):
    photo = _photo()
    box = np.array([200.0, 180.0, 60.0, 30.0])            # 2:1, so the box is not the crop
    full, faded = (SiamFCTracker(PixelNet(), params=TrackerParams(exemplar_context=c))
                   for c in (1.0, context))
    for tracker in (full, faded):
        tracker.init(photo, box)
    original, changed = full._exemplar(photo), faded._exemplar(photo)
    assert original.dtype == changed.dtype == np.uint8
    # the box spans 60 x 30 of the crop's z_size pixels, centred in the 127-pixel exemplar
    half = np.array([60.0, 30.0]) * 127 / full.z_size / 2
    axis = np.abs(np.arange(127) - 63.0)
    inside = (axis[:, None] <= half[1]) & (axis[None, :] <= half[0])
    assert 0 < inside.mean() < 0.5
    np.testing.assert_array_equal(changed[inside], original[inside])
    fill = np.asarray(full.fill)
    expected = np.round(fill + context * (original[~inside].astype(np.float64) - fill))
    assert np.abs(changed[~inside] - expected).max() <= 1
    assert not torch.equal(full.kernel, faded.kernel)


def test_bad_exemplar_context_is_refused():
    with pytest.raises(ParamsError, match="exemplar_context"):
        TrackerParams(exemplar_context=1.5)


def test_motion_prediction_centres_the_search_on_a_constant_velocity_target():
    step = np.array([12.0, -6.0])
    frames = _panned_frames(6, step=tuple(int(v) for v in step))
    box = np.array([80.0, 55.0, 40.0, 40.0])
    for rate in (0.0, 1.0):
        tracker = SiamFCTracker(PixelNet(), params=TrackerParams(motion_lr=rate))
        tracker.init(frames[0], box)
        for f, frame in enumerate(frames[1:], start=1):
            tracker.update(frame)
            next_centre = np.array(box_center(box)) - step * (f + 1)
            lag = np.linalg.norm(tracker.center + tracker.velocity - next_centre)
            if rate == 0.0:       # SiamFC: the next search is where the target was
                assert lag > np.linalg.norm(step), f"frame {f}"
            elif f >= 2:          # full rate: where a constant velocity puts it next
                assert lag < 0.35 * np.linalg.norm(step), f"frame {f}: {lag:.1f} px off"


def test_distractor_cells_are_the_strong_peaks_off_the_target():
    response = np.zeros((9, 9), np.float32)
    response[4, 4] = 10.0      # the target
    response[4, 6] = 9.0       # a peak inside the target's half-size: part of the target
    response[1, 8] = 7.0       # a look-alike above the ratio
    response[7, 1] = 5.0       # a weak peak below it
    response[6, 4] = 8.0       # straight below the target, beyond its half-height
    cells = distractor_cells(response, np.array([4.0, 4.0]), np.array([2.0, 1.0]), ratio=0.6)
    assert sorted(cells) == [(1, 8), (6, 4)]
    assert distractor_cells(response, np.array([4.0, 4.0]), np.array([2.0, 1.0]), 0.95) == []


def _target_and_look_alike():
    """A 400 x 300 grey frame holding a 64-px noise patch at (200, 150) and a copy of it 48 px to
    the right, and the target's box: 63.5 px wide, so the search crop is at 1 px per pixel."""
    rng = np.random.default_rng(0)
    frame = np.full((300, 400, 3), 128, np.uint8)
    patch = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frame[118:182, 168:232] = patch
    frame[118:182, 216:280] = patch
    return frame, np.array([168.75, 118.75, 63.5, 63.5])


def test_distractor_embedding_is_cut_where_the_look_alike_is():
    frame, box = _target_and_look_alike()
    tracker = SiamFCTracker(PixelNet(), params=TrackerParams(distractor_weight=0.5))
    tracker.init(frame, box)
    np.testing.assert_allclose(box_center(tracker.update(frame)), (200, 150), atol=0.5)
    crop = crop_and_resize(frame, (200.0, 150.0), 255.0, 255, tracker.fill)
    search = PixelNet().backbone(torch.from_numpy(crop).float().permute(2, 0, 1)[None])
    look_alike = search[:, :, 8:8 + 15, 8 + 6:8 + 6 + 15]      # 48 px = 6 cells to the right
    assert torch.allclose(tracker.distractors, look_alike, atol=1e-4)
    plain = SiamFCTracker(PixelNet())
    plain.init(frame, box)
    plain.update(frame)
    assert plain.distractors is None


@pytest.mark.parametrize("field, value", [("distractor_weight", -0.1), ("distractor_weight", 2.5),
                                          ("distractor_ratio", 0.0), ("distractor_lr", 0.0)])
def test_bad_distractor_settings_are_refused(field, value):
    with pytest.raises(ParamsError, match=field):
        TrackerParams(**{field: value})


def test_a_settings_file_gives_each_tracker_its_shared_or_own_settings(tmp_path):
    path = tmp_path / "tracking.json"
    path.write_text('{"scale_step": 1.06, "motion_lr": 0.3, '
                    '"per_tracker": {"siamfc": {"motion_lr": 0.0, "template_lr": 0.02}}}')
    found = tracker_params(path, ["siamfc", "packed"])
    assert found["packed"] == TrackerParams(scale_step=1.06, motion_lr=0.3)
    assert found["siamfc"] == TrackerParams(scale_step=1.06, template_lr=0.02)
    assert load_params(path).for_tracker("xnor") == found["packed"]
    assert tracker_params(None, ["rbsf"]) == {"rbsf": TrackerParams()}


def test_blend_starts_with_the_first_value_then_averages():
    first = np.array([1.0, 2.0])
    assert blend(None, first, 0.3) is first
    np.testing.assert_allclose(blend(np.array([2.0, 4.0]), np.array([4.0, 0.0]), 0.25), [2.5, 3.0])
