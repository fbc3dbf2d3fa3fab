"""The feature filter: where its response peaks, how it lines up with SiamFC's response map,
and the tracker using it."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import PixelNet
from trackers import SiamFCTracker
from trackers.feature_filter import FeatureFilter
from trackers.siamfc import ParamsError, TrackerParams

PHOTO = Path(__file__).resolve().parents[1] / "data" / "photos" / "baboon.jpg"
SIZE, RESPONSE = 22, 17          # SiamFC's search embedding and response map, in cells


def _blob_embedding(rng: np.random.Generator, channels: int = 16) -> np.ndarray:
    """A C x 22 x 22 map holding a random 5 x 5 pattern at the map's centre cell, zero around."""
    embedding = np.zeros((channels, SIZE, SIZE))
    c = (SIZE - 1) // 2
    embedding[:, c - 2:c + 3, c - 2:c + 3] = rng.normal(size=(channels, 5, 5))
    return embedding


def _peak(response: np.ndarray) -> tuple:
    row, col = np.unravel_index(int(np.argmax(response)), response.shape)
    return int(col), int(row)


@pytest.mark.parametrize("dx, dy", [(0, 0), (3, -2), (-5, 4), (7, 7)])
def test_response_peaks_on_siamfc_cell_of_the_displacement(dx, dy):
    embedding = _blob_embedding(np.random.default_rng(0))
    feature_filter = FeatureFilter(SIZE, SIZE, RESPONSE, sigma=1.0, lr=0.01)
    feature_filter.start(feature_filter.transform(embedding))
    moved = np.roll(embedding, (dy, dx), axis=(1, 2))
    response = feature_filter.respond(feature_filter.transform(moved[None]))
    assert response.shape == (1, RESPONSE, RESPONSE)
    # SiamFC's cell (8 + dx, 8 + dy) stands for that displacement
    assert _peak(response[0]) == (8 + dx, 8 + dy)


def test_learns_the_target_where_the_tracker_put_it():
    embedding = _blob_embedding(np.random.default_rng(1))
    feature_filter = FeatureFilter(SIZE, SIZE, RESPONSE, sigma=1.0, lr=1.0)
    spectra = feature_filter.transform(np.stack([embedding, np.roll(embedding, (2, -3),
                                                                     axis=(1, 2))]))
    feature_filter.start(feature_filter.transform(
        np.random.default_rng(2).normal(size=embedding.shape)))
    feature_filter.learn(spectra[1], (-3.0, 2.0))     # lr 1: this sample alone
    assert _peak(feature_filter.respond(spectra[:1])[0]) == (8, 8)
    assert _peak(feature_filter.respond(spectra[1:])[0]) == (8 - 3, 8 + 2)


def test_respond_before_start_and_wrong_sizes_are_errors():
    feature_filter = FeatureFilter(SIZE, SIZE, RESPONSE, sigma=1.0, lr=0.01)
    with pytest.raises(RuntimeError, match="before start"):
        feature_filter.respond(feature_filter.transform(np.zeros((1, 4, SIZE, SIZE))))
    with pytest.raises(ValueError, match="made for"):
        feature_filter.transform(np.zeros((1, 4, SIZE + 1, SIZE)))
    with pytest.raises(ValueError, match="does not fit"):
        FeatureFilter(10, 10, RESPONSE, sigma=1.0, lr=0.01)


@pytest.mark.parametrize("field, value", [("feature_filter_weight", -0.5),
                                          ("feature_filter_weight", 5.0),
                                          ("feature_filter_lr", 0.0),
                                          ("feature_filter_sigma", 0.0)])
def test_bad_feature_filter_settings_are_refused(field, value):
    with pytest.raises(ParamsError, match=field):
        TrackerParams(**{field: value})


def test_tracker_led_by_the_feature_filter_follows_a_moving_image():
    """Weight 4 gives the filter four times SiamFC's say: a cell of misalignment between the
    two maps would move the box by 8 crop pixels a frame."""
    image = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    step = np.array([5.0, -3.0])
    frames = [np.roll(image, (int(-3 * f), int(5 * f)), axis=(0, 1)) for f in range(10)]
    box = np.array([226.0, 226.0, 60.0, 60.0])
    params = TrackerParams(feature_filter_weight=4.0)
    tracker = SiamFCTracker(PixelNet(), params=params)
    tracker.init(frames[0], box)
    assert tracker.feature_filter is not None and tracker.feature_filter_gain > 0
    for index, frame in enumerate(frames[1:], start=1):
        out = tracker.update(frame)
        np.testing.assert_allclose(out[:2], box[:2] + index * step, atol=2.0)
