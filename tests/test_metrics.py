"""Our metrics against the got10k toolkit's own metric code and hand-computed cases."""
import numpy as np
import pytest
from got10k.experiments import ExperimentGOT10k, ExperimentOTB
from got10k.utils.metrics import center_error as tk_center_error
from got10k.utils.metrics import rect_iou as tk_rect_iou

from rbsf.eval import metrics


def test_iou_hand_cases():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 5, 5]])
    gt = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 5, 5], [0, 0, 5, 5]])
    np.testing.assert_allclose(metrics.iou(boxes, gt), [1.0, 50 / 150, 0.25, 0.0])


def test_iou_bound_clips_both_boxes():
    # a 10x10 box half outside a 15x15 image becomes 5x10 and matches the in-image part exactly
    assert metrics.iou([[10, 0, 10, 10]], [[10, 0, 5, 10]], bound=(15, 15))[0] == pytest.approx(1.0)


def test_center_error_hand_case():
    assert metrics.center_error([[0, 0, 11, 11]], [[3, 4, 11, 11]])[0] == pytest.approx(5.0)


def test_centre_inside_hand_cases():
    gt = np.array([[10, 10, 11, 21]] * 4)   # pixels 10..20 across, 10..30 down
    boxes = np.array([[0, 0, 41, 61],       # centre (20, 30): the last pixel, inside
                      [1, 0, 41, 61],       # centre (21, 30): one pixel right of it
                      [14, 18, 3, 3],       # a small box on the target
                      [10, 9, 11, 1]])      # centre (15, 9): just above
    assert metrics.centre_inside(boxes, gt).tolist() == [True, False, True, False]


def test_curves_hand_cases():
    succ = metrics.success_curve(np.array([0.0, 0.5, 1.0]), 3)  # thresholds 0, .5, 1; IoU > t
    np.testing.assert_allclose(succ, [2 / 3, 1 / 3, 0.0])
    prec = metrics.precision_curve(np.array([0.0, 20.0, 20.5]))
    assert prec[0] == pytest.approx(1 / 3) and prec[20] == pytest.approx(2 / 3)
    assert prec[21] == pytest.approx(1.0)


def _random_boxes(rng, n):
    xy = rng.uniform(-20, 300, size=(n, 2))
    wh = rng.uniform(1, 120, size=(n, 2))
    return np.concatenate([xy, wh], axis=1)


def test_iou_and_center_error_match_toolkit():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 500), _random_boxes(rng, 500)
    b[:100] = a[:100] + rng.normal(0, 3, size=(100, 4))
    np.testing.assert_allclose(metrics.iou(a, b), tk_rect_iou(a.copy(), b.copy()), atol=1e-12)
    np.testing.assert_allclose(metrics.iou(a, b, bound=(320, 240)),
                               tk_rect_iou(a.copy(), b.copy(), bound=(320, 240)), atol=1e-12)
    np.testing.assert_allclose(metrics.center_error(a, b), tk_center_error(a, b), atol=1e-12)


def test_otb_curves_match_toolkit_calc_curves():
    rng = np.random.default_rng(1)
    gt = _random_boxes(rng, 200)
    boxes = gt + rng.normal(0, 8, size=gt.shape)
    exp = ExperimentOTB.__new__(ExperimentOTB)  # only the curve code; no dataset is built
    exp.nbins_iou, exp.nbins_ce = 21, 51
    ours = metrics.otb_sequence(boxes, gt)
    boxes[0] = gt[0]  # the toolkit's report does this before _calc_metrics
    tk_succ, tk_prec = exp._calc_curves(*exp._calc_metrics(boxes, gt))
    np.testing.assert_allclose(ours["success_curve"], tk_succ)
    np.testing.assert_allclose(ours["precision_curve"], tk_prec)
    assert ours["success_auc"] == pytest.approx(np.mean(tk_succ))
    assert ours["precision_20"] == pytest.approx(tk_prec[20])


def test_got10k_scores_match_toolkit_evaluate():
    rng = np.random.default_rng(2)
    ious = rng.uniform(0, 1, 400)
    times = rng.uniform(0.01, 0.1, 400)
    exp = ExperimentGOT10k.__new__(ExperimentGOT10k)
    ao, sr, speed, succ = exp._evaluate(ious, times)
    ours = metrics.got10k_overall([ious[:150], ious[150:]], [times[:150], times[150:]])
    assert ours["ao"] == pytest.approx(ao) and ours["sr_50"] == pytest.approx(sr)
    assert ours["sr_75"] == pytest.approx(succ[75]) and ours["fps"] == pytest.approx(speed)
    np.testing.assert_allclose(ours["success_curve"], succ)


def test_uav_nan_frames_are_left_out():
    gt = np.array([[0, 0, 10, 10], [np.nan] * 4, [0, 0, 10, 10]])
    boxes = np.array([[0, 0, 10, 10], [50, 50, 10, 10], [0, 0, 10, 10]])
    assert metrics.otb_sequence(boxes, gt)["success_auc"] == pytest.approx(20 / 21)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 result boxes for 3"):
        metrics.otb_sequence(np.zeros((2, 4)), np.ones((3, 4)))
