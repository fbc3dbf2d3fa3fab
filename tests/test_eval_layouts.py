"""The LaSOT, TrackingNet, NfS, TColor128, DTB70 and VOT layouts: our readers against the got10k
toolkit's (where it can read them), LaSOT's metrics against a transcription of its MATLAB
toolkit, the TrackingNet submission archive, and the lines a broken root gets."""
import shutil
import zipfile

import numpy as np
import pytest
from benchmark_layouts import (source, write_dtb70, write_lasot, write_nfs, write_tcolor128,
                               write_trackingnet, write_vot)
from got10k.datasets import VOT, DTB70, NfS, TColor128

from rbsf.data.layouts import LAYOUTS, corner_to_rect, lasot_split
from rbsf.eval import metrics
from rbsf.eval.datasets import BENCHMARKS, select_sequences
from rbsf.eval.loading import load_benchmark
from rbsf.eval.report import build_summary, submission_archives
from rbsf.eval.runner import EvalError, write_result


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    return source(tmp_path_factory.mktemp("src"), 2, 12, seed=3)


def _load(dataset, root, allow_partial=False):
    benchmark = BENCHMARKS[dataset]
    names, missing = select_sequences(benchmark, root, None, allow_partial=allow_partial)
    return load_benchmark(benchmark, root, None, names), missing


@pytest.mark.parametrize("dataset, writer, toolkit", [
    ("NfS30", write_nfs, lambda root: NfS(root, fps=30)),
    ("NfS240", write_nfs, lambda root: NfS(root, fps=240)),
    ("TColor128", write_tcolor128, lambda root: TColor128(root, download=False)),
    ("DTB70", write_dtb70, DTB70),
    ("VOT2018", write_vot, lambda root: VOT(root, 2018, anno_type="default", download=False,
                                            return_meta=True))])
def test_readers_read_what_the_toolkit_reads(tmp_path, src, dataset, writer, toolkit):
    root = writer(tmp_path / dataset, src)
    sequences, _ = _load(dataset, root, allow_partial=True)
    theirs = toolkit(str(root))
    assert sorted(s.name for s in sequences) == sorted(theirs.seq_names)
    for seq in sequences:
        item = theirs[seq.name]
        assert list(seq.frames) == [str(f) for f in item[0]]
        if dataset.startswith("VOT"):
            np.testing.assert_allclose(seq.regions, item[1])
            np.testing.assert_allclose(seq.boxes, theirs._corner2rect(item[1]))
            assert set(seq.tags) == set(item[2])
            for tag, flags in item[2].items():
                np.testing.assert_array_equal(seq.tags[tag], flags)
        else:
            np.testing.assert_allclose(seq.boxes, item[1])
        assert len(seq.frames) == 12


def test_vot_corner_to_rect_keeps_centre_and_area():
    square = np.array([[10, 0, 20, 10, 10, 20, 0, 10]], dtype=float)   # a square turned 45 deg
    (x, y, w, h), = corner_to_rect(square)
    assert (x + w / 2, y + h / 2) == pytest.approx((10, 10))
    assert (w - 1) * (h - 1) == pytest.approx(200)   # its area, the +1 is the toolkit's


def test_lasot_layout_flags_and_split(tmp_path, src):
    root = write_lasot(tmp_path / "lasot", src)
    # monkey-17 has more images than boxes: only the annotated frames count
    extra = root / "airplane" / "airplane-1" / "img" / "00000013.jpg"
    extra.write_bytes((root / "airplane" / "airplane-1" / "img" / "00000001.jpg").read_bytes())
    with pytest.raises(EvalError, match=r"278 of 280 LaSOT sequences are missing.*airplane-9"):
        select_sequences(BENCHMARKS["LaSOT"], root, None)
    sequences, missing = _load("LaSOT", root, allow_partial=True)
    assert len(lasot_split()) == 280 and len(missing) == 278
    first, second = sequences
    assert first.name == "airplane-1" and len(first.frames) == 12
    assert first.frames[0].endswith("airplane/airplane-1/img/00000001.jpg")
    assert list(np.flatnonzero(~first.visible)) == [2]       # fully occluded
    assert list(np.flatnonzero(~second.visible)) == [3]      # out of view
    np.testing.assert_allclose(first.boxes, src[0][1])
    # pysot's flat copy (<category>-<n>/ straight under the root) reads the same
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("airplane-1", "basketball-1"):
        (root / name.split("-")[0] / name).rename(flat / name)
    again, _ = _load("LaSOT", flat, allow_partial=True)
    np.testing.assert_array_equal(again[0].visible, first.visible)


def _lasot_toolkit(res, anno, absent, norm):
    """utils/calc_seq_err_robust.m and utils/eval_tracker.m of the LaSOT evaluation toolkit,
    transcribed: one sequence's success (or precision) curve."""
    res, n = res.copy(), len(anno)
    for i in range(1, n):
        r = res[i]
        if (np.isnan(r).any() or r[2] <= 0 or r[3] <= 0) and not np.isnan(anno[i]).any():
            res[i] = res[i - 1]
    rect = res.copy()
    rect[0] = anno[0]
    rect, gt = rect[absent == 0], anno[absent == 0]
    centre_gt = gt[:, :2] + (gt[:, 2:] - 1) / 2
    centre = rect[:, :2] + (rect[:, 2:] - 1) / 2
    if norm:
        centre, centre_gt = centre / gt[:, 2:], centre_gt / gt[:, 2:]
    err = np.sqrt(((centre - centre_gt) ** 2).sum(axis=1))
    idx = (gt > 0).sum(axis=1) == 4
    a, b = rect[idx], gt[idx]        # calc_rect_int: pixels x .. x + w - 1
    iw = np.maximum(0, np.minimum(a[:, 0] + a[:, 2] - 1, b[:, 0] + b[:, 2] - 1)
                    - np.maximum(a[:, 0], b[:, 0]) + 1)
    ih = np.maximum(0, np.minimum(a[:, 1] + a[:, 3] - 1, b[:, 1] + b[:, 3] - 1)
                    - np.maximum(a[:, 1], b[:, 1]) + 1)
    inter = iw * ih
    coverage = -np.ones(len(idx))
    coverage[idx] = inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)
    err[~idx] = -1
    eps = np.finfo(float).eps
    if norm is None:
        return np.array([(coverage > t).sum() for t in np.arange(21) * 0.05]) / (n + eps)
    thresholds = np.arange(51) / (100 if norm else 1)
    return np.array([(err <= t).sum() for t in thresholds]) / (n + eps)


def test_lasot_metrics_match_its_toolkit():
    rng = np.random.default_rng(4)
    for _ in range(20):
        n = 60
        # integer boxes, as LaSOT's: the first frame's IoU is then exactly 1 in both
        gt = np.column_stack([rng.integers(1, 200, (n, 2)), rng.integers(5, 60, (n, 2))])
        gt = gt.astype(float)
        res = gt + rng.normal(0, 8, gt.shape)
        res[rng.random(n) < 0.1, 2] = -1            # broken results take the previous box
        absent = (rng.random(n) < 0.2).astype(int)
        ours = metrics.lasot_sequence(res, gt, absent == 0)
        np.testing.assert_allclose(ours["success_curve"], _lasot_toolkit(res, gt, absent, None),
                                   atol=1e-12)
        np.testing.assert_allclose(ours["precision_curve"],
                                   _lasot_toolkit(res, gt, absent, False), atol=1e-12)
        np.testing.assert_allclose(ours["norm_precision_curve"],
                                   _lasot_toolkit(res, gt, absent, True), atol=1e-12)


def test_lasot_hand_case():
    gt = np.array([[10, 10, 8, 8]] * 4, dtype=float)
    res = np.array([[0, 0, 1, 1], [10, 10, 8, 8], [10, 10, 8, 8], [14, 10, 8, 8]], dtype=float)
    visible = np.array([True, True, False, True])    # frame 3: absent, a perfect box is no success
    ours = metrics.lasot_sequence(res, gt, visible)
    # IoUs 1 (the first frame counts with the ground truth), 1, (absent), 32 / 96; every frame
    # in the denominator
    assert ours["success_curve"][10] == pytest.approx(2 / 4)     # IoU > 0.5
    assert ours["success_curve"][6] == pytest.approx(3 / 4)      # IoU > 0.3
    assert ours["precision_curve"][4] == pytest.approx(3 / 4)    # the 4 px shift within 4 px
    assert ours["precision_curve"][3] == pytest.approx(2 / 4)
    # normalised: 4 px of an 8 px wide target is 0.5
    assert ours["norm_precision_curve"][50] == pytest.approx(3 / 4)
    assert ours["norm_precision_curve"][49] == pytest.approx(2 / 4)
    assert ours["norm_precision"] == pytest.approx((2 / 4 * 50 + 3 / 4) / 51)


def test_lasot_summary_scores(tmp_path, src):
    root = write_lasot(tmp_path / "lasot", src)
    sequences, missing = _load("LaSOT", root, allow_partial=True)
    for seq in sequences:
        write_result(tmp_path / "res", "Perfect", seq.name, seq.boxes, np.full(12, 0.01))
    summary = build_summary("LaSOT", "lasot", sequences, tmp_path / "res", ["Perfect"], missing)
    perfect = summary["trackers"]["Perfect"]
    # one absent frame in each 12-frame sequence; 20 of 21 thresholds below IoU 1
    assert perfect["success_auc"] == pytest.approx(11 / 12 * 20 / 21)
    assert perfect["precision_20"] == pytest.approx(11 / 12)
    assert perfect["norm_precision"] == pytest.approx(11 / 12)
    assert perfect["fps"] == pytest.approx(100)


def test_trackingnet_frames_in_numeric_order_and_submission_archive(tmp_path):
    src = source(tmp_path / "src", 2, 12, seed=5)     # 0.jpg ... 11.jpg: 10.jpg sorts before 2.jpg
    root = write_trackingnet(tmp_path / "tn", src)
    benchmark = BENCHMARKS["TrackingNet"]
    with pytest.raises(EvalError, match="holds 2 of the 511 TrackingNet sequences"):
        select_sequences(benchmark, root, None)
    sequences, _ = _load("TrackingNet", root, allow_partial=True)
    seq = sequences[0]
    assert [f.rsplit("/", 1)[1] for f in seq.frames] == [f"{i}.jpg" for i in range(12)]
    assert np.isnan(seq.boxes[1:]).all() and list(seq.visible) == [True] + [False] * 11
    for s in sequences:
        boxes = np.tile(s.boxes[:1], (12, 1)) + np.arange(12)[:, None]
        write_result(tmp_path / "res", "RB-SF", s.name, boxes, np.full(12, 0.02), "otb")
    assert benchmark.submission(None) and benchmark.results == "otb"
    archive, = submission_archives(tmp_path / "res", ["RB-SF"], [s.name for s in sequences],
                                   tmp_path / "rep", benchmark.protocol)
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted(f"{s.name}.txt" for s in sequences)
        rows = np.loadtxt(z.read(f"{seq.name}.txt").decode().splitlines(), delimiter=",")
    assert rows.shape == (12, 4)
    np.testing.assert_allclose(rows[0], src[0][1][0])


@pytest.mark.parametrize("dataset, writer, breaks, message", [
    ("NfS30", write_nfs, lambda r: (r / "Gymnastics" / "30" / "Gymnastics.txt").write_text(
        "1 10 10 20 20 1 0 0 0 \"person\"\n" * 3), "Gymnastics: 12 frames but 3 boxes"),
    ("NfS30", write_nfs, lambda r: (r / "Gymnastics" / "30" / "Gymnastics.txt").write_text(
        "1 10 ten\n"), "expected 'track_id xmin ymin xmax ymax"),
    ("TColor128", write_tcolor128, lambda r: (r / "Baby_ce" / "img" / "0007.jpg").unlink(),
     "Baby_ce: 1 of its 12 annotated frames are missing"),
    ("DTB70", write_dtb70, lambda r: (r / "BMX2" / "img" / "00003.jpg").unlink(),
     "BMX2: 11 frames but 12 boxes"),
    ("VOT2018", write_vot, lambda r: (r / "bag" / "groundtruth.txt").write_text("1,2,3\n" * 12),
     "expected 4 numbers or 8 numbers"),
    ("LaSOT", write_lasot, lambda r: (r / "basketball" / "basketball-1" / "out_of_view.txt"
                                      ).unlink(), "basketball-1 has no out_of_view.txt"),
    ("TrackingNet", write_trackingnet, lambda r: (r / "TEST" / "frames" / "a1qoB1eERn0_0" /
                                                  "5.jpg").unlink(), "without gaps")])
def test_broken_sequences_are_one_clear_error(tmp_path, src, dataset, writer, breaks, message):
    root = writer(tmp_path / dataset, src)
    breaks(root)
    with pytest.raises(EvalError, match=message):
        _load(dataset, root, allow_partial=True)


@pytest.mark.parametrize("dataset, expected", [
    ("LaSOT", "<category>/<category>-<n>/img"), ("TrackingNet", "TEST/anno/<seq>.txt"),
    ("NfS240", "<seq>/240/<seq>.txt"), ("TColor128", "<seq>_gt.txt"),
    ("DTB70", "groundtruth_rect.txt"), ("VOT2016", "ROOT/list.txt")])
def test_a_root_of_another_layout_is_named(tmp_path, src, dataset, expected):
    root = write_dtb70(tmp_path / "dtb", src) if dataset != "DTB70" else \
        write_nfs(tmp_path / "nfs", src)
    with pytest.raises(EvalError, match=f"is not a .* root: expected .*{expected}"):
        select_sequences(BENCHMARKS[dataset], root, None)


def test_nfs_root_without_the_asked_frame_rate(tmp_path, src):
    root = write_nfs(tmp_path / "nfs", src)
    for seq in ("Gymnastics", "airboard_1"):
        shutil.rmtree(root / seq / "30")
    with pytest.raises(EvalError, match="not a NfS \\(30 fps\\) root"):
        select_sequences(BENCHMARKS["NfS30"], root, None)
    (root / "Gymnastics" / "30").mkdir()
    with pytest.raises(EvalError, match="2 of 2 NfS30 sequences are missing.*Gymnastics.*"
                                        "airboard_1.*holds 2 of the 100"):
        select_sequences(BENCHMARKS["NfS30"], root, None)
    assert LAYOUTS["nfs240"].present(root, "Gymnastics")
