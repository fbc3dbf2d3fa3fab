"""The tracker's fast response post-processing equals SiamFC's reference formulation exactly."""
import cv2
import numpy as np
import pytest
import torch

from trackers import SiamFCTracker
from trackers.siamfc import TrackerParams


class _Net:
    """Stands in for a network: the tracker reads only its response size (17 x 17)."""

    out_scale = 1e-3

    def backbone(self, x):
        side = 6 if x.shape[-1] == 127 else 22
        return torch.zeros(x.shape[0], 1, side, side)


def _reference_locate(tracker, responses):
    """SiamFC's reference: upsample every scale to float64, penalise, then post-process."""
    p = tracker.params
    size = (tracker.upscale_size, tracker.upscale_size)
    up = np.stack([cv2.resize(r.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
                   for r in responses]).astype(np.float64)
    centre = p.scale_num // 2
    up[:centre] *= p.scale_penalty
    up[centre + 1:] *= p.scale_penalty
    prior = (p.scale_step ** np.arange(-centre, centre + 1, dtype=np.float64)) ** p.scale_bias
    up *= prior[:, None, None]
    scale_id = int(np.argmax(up.reshape(len(up), -1).max(axis=1)))
    response = up[scale_id] - up[scale_id].min()
    response /= response.sum() + 1e-16
    response = (1 - p.window_influence) * response + p.window_influence * tracker.window
    row, col = np.unravel_index(int(np.argmax(response)), response.shape)
    return scale_id, np.array([col, row], dtype=np.float64)


@pytest.mark.parametrize("scale_num, scale_bias", [(3, 0.0), (5, 0.0), (3, 1.5), (5, -2.0)])
def test_locate_equals_the_reference(scale_num, scale_bias):
    tracker = SiamFCTracker(_Net(), params=TrackerParams(scale_num=scale_num,
                                                         scale_bias=scale_bias))
    rng = np.random.default_rng(0)
    for trial in range(200):
        responses = rng.normal(size=(scale_num, 17, 17)).astype(np.float32)
        if trial % 4 == 1:  # the same map at every scale: the penalty decides
            responses[:] = responses[0]
        if trial % 4 == 2:  # a flat map
            responses[:] = 0.5
        scale_id, peak = tracker._locate(responses)
        ref_id, ref_peak = _reference_locate(tracker, responses)
        assert scale_id == ref_id
        np.testing.assert_array_equal(peak, ref_peak)


@pytest.mark.parametrize("scale_bias, expected", [(0.0, 1), (2.0, 2), (-2.0, 0)])
def test_scale_bias_decides_between_equal_maps(scale_bias, expected):
    # equal peaks: the penalty (0.9745) keeps the centre scale, unless the prior outweighs it
    # (1.0375 ** 2 = 1.076: the larger or the smaller crop wins)
    tracker = SiamFCTracker(_Net(), params=TrackerParams(scale_bias=scale_bias))
    responses = np.repeat(np.random.default_rng(1).random((1, 17, 17)), 3, axis=0)
    assert tracker._locate(responses.astype(np.float32))[0] == expected
