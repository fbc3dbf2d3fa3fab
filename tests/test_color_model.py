"""The colour model: its likelihoods against hand-counted histograms, where its score peaks,
and the tracker using it to tell the target from a look-alike of another colour."""
import numpy as np
import pytest
import torch.nn.functional as F

from trackers import SiamFCTracker
from trackers.color_model import ColorModel
from trackers.siamfc import ParamsError, TrackerParams

RED, GREEN, BLUE, WHITE = (210, 0, 0), (0, 210, 0), (30, 60, 200), (250, 250, 250)


class GreyNet:
    """A colour-blind 'network': the zero-mean, 8x8-pooled grey image, so a red and a green
    square of the same grey level look alike to it."""

    out_scale = 1e-3

    def backbone(self, x):
        x = F.avg_pool2d(x.mean(dim=1, keepdim=True), 8, 8)
        return x - x.mean(dim=(1, 2, 3), keepdim=True)


def _scene(squares, size=(240, 320), background=BLUE, side=32) -> np.ndarray:
    image = np.empty((*size, 3), np.uint8)
    image[...] = background
    for (x, y), color in squares:
        image[y:y + side, x:x + side] = color
    return image


def _colors(model: ColorModel, *colors) -> list:
    return model.likelihood(np.array([colors], np.uint8))[0].tolist()


def test_likelihood_is_the_foreground_share_of_each_colour():
    # a 41-px red square on blue: the shrunk box is all red, the context around it all blue
    model = ColorModel(bins=32, lr=0.04)
    model.learn(_scene([((100, 80), RED)], side=41), center=(120, 100), size=(41, 41))
    assert _colors(model, RED, BLUE, GREEN) == [1.0, 0.0, 0.0]     # green: never seen
    # left half red, right half white, on white: P(red) = .5 / (.5 + 0), P(white) = .5 / (.5 + 1)
    image = _scene([((100, 80), RED)], background=WHITE, side=41)
    image[:, 120:] = WHITE
    half = ColorModel(bins=32, lr=0.04)
    half.learn(image, center=(120, 100), size=(41, 41))
    red, white = _colors(half, RED, WHITE)
    assert red == pytest.approx(1.0)
    # the shrunk box (32.8 px, rounded to 33 columns 104..136) holds 16 red and 17 white columns
    assert white == pytest.approx((17 / 33) / (17 / 33 + 1), rel=1e-6)


def test_learning_blends_the_histograms_at_its_rate():
    model = ColorModel(bins=32, lr=0.5)
    model.learn(_scene([((100, 80), RED)], side=41), center=(120, 100), size=(41, 41))
    # now the target is green and red sits in its context
    later = _scene([((100, 80), GREEN), ((150, 80), RED)], side=41)
    model.learn(later, center=(120, 100), size=(41, 41))
    red, green, blue = _colors(model, RED, GREEN, BLUE)
    assert green == pytest.approx(1.0) and blue == 0.0
    red_in_context = 0.5 * np.mean(~np.all(_context(later) == BLUE, axis=-1))
    assert red == pytest.approx(0.5 / (0.5 + red_in_context), rel=1e-6)


def _context(image: np.ndarray) -> np.ndarray:
    """The background pixels of a 41-px box at (120, 100) with its 41-px context padding."""
    region = image[59:141, 79:161].copy()      # 82 px: pixel centres in [79, 161)
    keep = np.ones(region.shape[:2], bool)
    keep[21:62, 21:62] = False                  # the box: 100..140, 80..120
    return region[keep]


def test_score_peaks_at_the_target_colour_in_crop_coordinates():
    model = ColorModel(bins=32, lr=0.04)
    model.learn(_scene([((100, 80), RED)], side=41), center=(120, 100), size=(41, 41))
    crop = _scene([((40, 150), RED)], size=(255, 255), side=41)
    score = model.respond(crop, (41, 41), np.arange(255.0))
    row, col = np.unravel_index(int(np.argmax(score)), score.shape)
    assert (col, row) == (60, 170) and score[row, col] == pytest.approx(1.0)
    assert score[20, 20] == 0.0


def test_likelihood_before_learning_is_an_error():
    with pytest.raises(RuntimeError, match="before learn"):
        ColorModel(bins=32, lr=0.04).likelihood(np.zeros((2, 2, 3), np.uint8))


def test_tracker_keeps_the_target_when_a_look_alike_of_another_colour_takes_its_place():
    """The target moves right; a green square of the same grey level as the red target sits
    where the target started. The colour-blind net alone switches to it; with the colour
    model the tracker stays on the red target."""
    first = _scene([((144, 104), RED)], background=(128, 128, 128))
    frames = [_scene([((144 + 16 * k, 104), RED), ((144, 104), GREEN)],
                     background=(128, 128, 128)) for k in (1, 2, 3)]
    ends = {}
    for weight in (0.0, 0.5):
        tracker = SiamFCTracker(GreyNet(), params=TrackerParams(color_weight=weight))
        tracker.init(first, (144, 104, 32, 32))
        ends[weight] = [tracker.update(frame) for frame in frames][-1]
    assert abs(ends[0.0][0] - 144) < 4       # on the green look-alike
    assert abs(ends[0.5][0] - 192) < 4       # on the red target


@pytest.mark.parametrize("field, value", [("color_weight", -0.1), ("color_weight", 1.5),
                                          ("color_lr", 0.0), ("color_bins", 1),
                                          ("color_bins", 128), ("color_bins", 8.5)])
def test_bad_colour_settings_are_refused(field, value):
    with pytest.raises(ParamsError, match=field):
        TrackerParams(**{field: value})
