"""The DSST scale filter: HOG cells, crops, the size change it measures, the tracker using it."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import PixelNet
from trackers import SiamFCTracker
from trackers.scale_filter import ScaleFilter, crop_resized, hog_cells
from trackers.siamfc import ParamsError, TrackerParams

PHOTO = Path(__file__).resolve().parents[1] / "data" / "photos" / "baboon.jpg"


def _grey() -> np.ndarray:
    return cv2.imread(str(PHOTO), cv2.IMREAD_GRAYSCALE).astype(np.float64)


def _zoomed(image: np.ndarray, center, factor: float) -> np.ndarray:
    """The image magnified by ``factor`` about ``center`` (a target there grows by it)."""
    matrix = cv2.getRotationMatrix2D(tuple(float(v) for v in center), 0, factor)
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def test_hog_cells_of_a_vertical_edge_fill_the_horizontal_gradient_bin():
    patch = np.zeros((1, 8, 8))
    patch[:, :, 4:] = 100.0            # gradient along x: orientation 0, bin 0
    hist = hog_cells(patch)
    assert hist.shape == (1, 2, 2, 9)
    assert np.all(hist[..., 1:] == 0) and np.all(hist[..., 0] > 0)
    # divided by the neighbourhood's energy: the contrast of the edge does not matter
    np.testing.assert_allclose(hog_cells(patch * 7.0), hist, rtol=1e-6)


def test_crop_resized_repeats_the_edge_outside_the_image():
    image = np.arange(20, dtype=np.float64).reshape(4, 5)
    patch = crop_resized(image, (0.0, 0.0), (3, 3), (3, 3))
    np.testing.assert_array_equal(patch, [[0, 0, 1], [0, 0, 1], [5, 5, 6]])


@pytest.mark.parametrize("zoom", [1.0, 1.06, 0.94, 1.1, 0.9])
def test_measures_the_zoom_of_the_next_frame(zoom):
    image = _grey()
    center, size = (256.0, 256.0), (80.0, 60.0)
    scale_filter = ScaleFilter(num=33, step=1.02, lr=0.025)
    scale_filter.start(image, center, size)
    measured = scale_filter.estimate(_zoomed(image, center, zoom), center, size)
    assert abs(np.log(measured / zoom)) <= 1.5 * np.log(1.02), measured


def test_estimate_before_start_is_an_error():
    with pytest.raises(RuntimeError, match="before start"):
        ScaleFilter().estimate(_grey(), (10, 10), (8, 8))


@pytest.mark.parametrize("field, value", [("scale_filter_lr", 1.5), ("scale_filter_num", 4),
                                          ("scale_filter_step", 1.0)])
def test_bad_scale_filter_settings_are_refused(field, value):
    with pytest.raises(ParamsError, match=field):
        TrackerParams(**{field: value})


def test_tracker_with_the_scale_filter_follows_a_growing_target():
    image = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    center = np.array([256.0, 256.0])
    frames = [_zoomed(image, center, 1.03 ** f) for f in range(8)]
    box = np.array([*(center - 29.5), 60.0, 60.0])
    sizes = {}
    for rate in (0.0, 0.025):
        params = TrackerParams(scale_num=1, scale_filter_lr=rate)
        tracker = SiamFCTracker(PixelNet(), params=params)
        tracker.init(frames[0], box)
        for frame in frames[1:]:
            out = tracker.update(frame)
        sizes[rate] = out[2]
    assert sizes[0.0] == 60.0                          # one crop: SiamFC cannot resize
    assert abs(np.log(sizes[0.025] / (60 * 1.03 ** 7))) < 0.05, sizes
