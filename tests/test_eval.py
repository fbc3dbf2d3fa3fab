"""Our reports against the got10k toolkit's own report() on the same result files.

Three made-up trackers write results in our runner's layout: a perfect one (the ground truth),
an identity one (the first box forever) and a noisy one (ground truth plus noise). The toolkit's
ExperimentOTB / ExperimentUAV123 / ExperimentGOT10k / ExperimentNfS / ExperimentTColor128 /
ExperimentDTB70 then score those very files, on tiny data sets written in each real layout. For
VOT, made-up trackers that see the ground truth run through our supervised-experiment runner
(failures, re-initialisation, repetitions) and ExperimentVOT.report scores their records; the
toolkit's own run_supervised writes the same records for the same trackers.
"""
import zipfile
from pathlib import Path

import numpy as np
import pytest
from benchmark_layouts import source, write_dtb70, write_nfs, write_tcolor128, write_vot
from got10k.datasets import OTB, VOT, TColor128
from got10k.experiments import (ExperimentDTB70, ExperimentGOT10k, ExperimentNfS, ExperimentOTB,
                                ExperimentTColor128, ExperimentUAV123, ExperimentVOT)
from got10k.experiments import otb as toolkit_otb
from got10k.experiments import tcolor128 as toolkit_tcolor128
from got10k.experiments import vot as toolkit_vot
from got10k.utils.metrics import poly_iou
from PIL import Image

from rbsf.data.synthetic import write_dataset
from rbsf.eval.datasets import BENCHMARKS, not_found, otb_version_names, select_sequences
from rbsf.eval.loading import load_benchmark
from rbsf.eval.report import build_summary, submission_archives, write_report
from rbsf.eval.runner import (EvalError, make_jobs, run_jobs, vot_record_files, vot_record_path,
                              write_result)

FAKE = ("Perfect", "Identity", "Noisy")


def _fake_results(sequences, result_dir, layout, seed=0):
    rng = np.random.default_rng(seed)
    for seq in sequences:
        gt = np.nan_to_num(seq.boxes, nan=0.0)
        noisy = gt + rng.normal(0, 6, size=gt.shape)
        noisy[:, 2:] = np.maximum(noisy[:, 2:], 1)
        results = {"Perfect": gt, "Identity": np.repeat(gt[:1], len(gt), axis=0), "Noisy": noisy}
        for name, boxes in results.items():
            times = rng.uniform(0.01, 0.2, len(gt))
            write_result(result_dir, name, seq.name, boxes, times, layout)


def _ours(dataset, root, subset, result_dir, tmp_path, trackers=FAKE):
    """Our summary of ``trackers``; without made-up results stored already, those of FAKE."""
    benchmark = BENCHMARKS[dataset]
    names, missing = select_sequences(benchmark, root, subset, allow_partial=True)
    sequences = load_benchmark(benchmark, root, subset, names)
    if trackers == FAKE:
        _fake_results(sequences, result_dir, benchmark.results)
    summary = build_summary(benchmark.name, benchmark.protocol, sequences, result_dir, trackers,
                            missing, subset,
                            not_found=not_found(benchmark, len(names) + len(missing)))
    for path in write_report(summary, tmp_path / "report"):
        assert path.stat().st_size > 0
    return summary


def _toolkit(experiment_class, root, result_dir, tmp_path, **options):
    """The toolkit's experiment on ``root``, reading the results in ``result_dir``."""
    experiment = experiment_class(str(root), result_dir=str(tmp_path / "tk"),
                                  report_dir=str(tmp_path / "tk_report"), **options)
    experiment.result_dir = str(result_dir)
    return experiment


def _compare_otb(summary, performance):
    for name in FAKE:
        ours, theirs = summary["trackers"][name], performance[name]["overall"]
        assert ours["success_auc"] == pytest.approx(theirs["success_score"], abs=1e-12)
        assert ours["precision_20"] == pytest.approx(theirs["precision_score"], abs=1e-12)
        assert ours["sr_50"] == pytest.approx(theirs["success_rate"], abs=1e-12)
        assert ours["fps"] == pytest.approx(theirs["speed_fps"], rel=1e-6)
        np.testing.assert_allclose(ours["success_curve"], theirs["success_curve"], atol=1e-12)
        np.testing.assert_allclose(ours["precision_curve"], theirs["precision_curve"], atol=1e-12)
        for seq, values in performance[name]["seq_wise"].items():
            assert (ours["per_sequence"][seq]["success_auc"]
                    == pytest.approx(values["success_score"]))
    assert summary["trackers"]["Perfect"]["success_auc"] == pytest.approx(20 / 21)
    assert (summary["trackers"]["Identity"]["success_auc"]
            < summary["trackers"]["Perfect"]["success_auc"])


def test_otb_matches_toolkit_report(tmp_path, monkeypatch):
    root = write_dataset(str(tmp_path / "otb"), "otb", 3, 12, seed=1, frame_size=(96, 72))
    result_dir = tmp_path / "results" / "OTB100"
    summary = _ours("OTB100", root, None, result_dir, tmp_path)
    assert summary["partial"] and len(summary["missing"]) == len(otb_version_names("tb100")) - 3
    # ExperimentOTB always builds OTB(..., download=True): make it build the local subset only
    monkeypatch.setattr(toolkit_otb, "OTB", lambda root_dir, version, download: OTB(
        root_dir, version, download=False))
    experiment = _toolkit(ExperimentOTB, root, result_dir, tmp_path, version="tb100")
    _compare_otb(summary, experiment.report(list(FAKE)))


def test_uav123_matches_toolkit_report(tmp_path):
    root = write_dataset(str(tmp_path / "uav"), "uav123", 1, 2, seed=2, frame_size=(64, 48))
    result_dir = tmp_path / "results" / "UAV123"
    summary = _ours("UAV123", root, None, result_dir, tmp_path)
    experiment = _toolkit(ExperimentUAV123, root, result_dir, tmp_path)
    _compare_otb(summary, experiment.report(list(FAKE)))


def test_got10k_val_matches_toolkit_report(tmp_path):
    root = write_dataset(str(tmp_path / "got"), "got10k", 2, 12, seed=3, frame_size=(96, 72))
    result_dir = tmp_path / "results" / "GOT-10k"
    summary = _ours("GOT10k", root, "val", result_dir, tmp_path)
    experiment = _toolkit(ExperimentGOT10k, root, result_dir, tmp_path, subset="val")
    performance = experiment.report(list(FAKE))
    for name in FAKE:
        ours, theirs = summary["trackers"][name], performance[name]["overall"]
        assert ours["ao"] == pytest.approx(theirs["ao"], abs=1e-12)
        assert ours["sr_50"] == pytest.approx(theirs["sr"], abs=1e-12)
        assert ours["sr_75"] == pytest.approx(theirs["succ_curve"][75], abs=1e-12)
        assert ours["fps"] == pytest.approx(theirs["speed_fps"], rel=1e-6)
        np.testing.assert_allclose(ours["success_curve"], theirs["succ_curve"], atol=1e-12)
        for seq, values in performance[name]["seq_wise"].items():
            assert ours["per_sequence"][seq]["ao"] == pytest.approx(values["ao"])
    assert summary["trackers"]["Perfect"]["ao"] == pytest.approx(1.0)


def test_got10k_test_submission_archive(tmp_path):
    root = write_dataset(str(tmp_path / "got"), "got10k", 2, 5, seed=4, frame_size=(64, 48))
    benchmark = BENCHMARKS["GOT10k"]
    names, _ = select_sequences(benchmark, root, "test")
    sequences = load_benchmark(benchmark, root, "test", names)
    result_dir = tmp_path / "results" / "GOT-10k"
    _fake_results(sequences, result_dir, "got10k")
    write_result(result_dir, "Identity", "GOT-10k_Val_000001", np.zeros((5, 4)), np.ones(5),
                 "got10k")
    archives = submission_archives(result_dir, ["Identity"], names, tmp_path / "report")
    with zipfile.ZipFile(archives[0]) as archive:
        members = set(archive.namelist())
        first = archive.read(f"{names[0]}/{names[0]}_001.txt").decode()
    assert members == {f"{s}/{s}_{suffix}.txt" for s in names for suffix in ("001", "time")}
    np.testing.assert_allclose(np.loadtxt(first.splitlines(), delimiter=",")[0],
                               sequences[0].boxes[0], atol=1e-3)


def test_custom_folder_without_ground_truth_is_not_left_out_silently(tmp_path):
    root = Path(write_dataset(str(tmp_path / "otb"), "otb", 2, 5, seed=1, frame_size=(96, 72)))
    unannotated = sorted(p for p in root.iterdir() if p.is_dir())[0]
    for gt in unannotated.glob("groundtruth*.txt"):
        gt.unlink()
    with pytest.raises(EvalError, match=f"1 of 2 custom sequences are missing.*{unannotated.name}"
                                        ".*no groundtruth_rect.txt"):
        select_sequences(BENCHMARKS["custom"], root, None)
    present, missing = select_sequences(BENCHMARKS["custom"], root, None, allow_partial=True)
    assert missing == [unannotated.name] and len(present) == 1


@pytest.mark.parametrize("fps", [30, 240])
def test_nfs_matches_toolkit_report(tmp_path, fps):
    root = write_nfs(tmp_path / "nfs", source(tmp_path / "src", 2, 10, seed=8))
    result_dir = tmp_path / "results" / f"NfS{fps}"
    summary = _ours(f"NfS{fps}", root, None, result_dir, tmp_path)
    assert summary["partial"] and summary["not_found"] == 98
    experiment = _toolkit(ExperimentNfS, root, result_dir, tmp_path, fps=fps)
    _compare_otb(summary, experiment.report(list(FAKE)))


def test_tcolor128_matches_toolkit_report(tmp_path, monkeypatch):
    root = write_tcolor128(tmp_path / "tc", source(tmp_path / "src", 2, 10, seed=9))
    result_dir = tmp_path / "results" / "TColor128"
    summary = _ours("TColor128", root, None, result_dir, tmp_path)
    # ExperimentTColor128 builds TColor128(root) with download=True, which downloads into any
    # root of 100 entries or fewer: make it read the local folders only
    monkeypatch.setattr(toolkit_tcolor128, "TColor128", lambda root_dir: TColor128(
        root_dir, download=False))
    experiment = _toolkit(ExperimentTColor128, root, result_dir, tmp_path)
    _compare_otb(summary, experiment.report(list(FAKE)))


def test_dtb70_matches_toolkit_report(tmp_path):
    root = write_dtb70(tmp_path / "dtb", source(tmp_path / "src", 2, 10, seed=10))
    result_dir = tmp_path / "results" / "DTB70"
    summary = _ours("DTB70", root, None, result_dir, tmp_path)
    experiment = _toolkit(ExperimentDTB70, root, result_dir, tmp_path)
    _compare_otb(summary, experiment.report(list(FAKE)))


class _SeesGroundTruth:
    """A made-up tracker that recognises each frame by its pixels and answers with that frame's
    ground-truth box, pushed ``drift`` px right per frame since its initialisation, plus noise
    of ``jitter`` px (from a seeded generator, so repetitions differ); ``hold`` keeps the first
    box (an identity tracker)."""

    def __init__(self, name, sequences, drift=0.0, jitter=0.0, hold=False):
        self.name, self.drift, self.jitter, self.hold = name, drift, jitter, hold
        self.is_deterministic = jitter == 0
        self.rng = np.random.default_rng(0)
        self.truth = {}
        for seq in sequences:
            for frame, box in zip(seq.frames, seq.boxes):
                with Image.open(frame) as image:
                    self.truth[image.convert("RGB").tobytes()] = box

    def init(self, image, box):
        self.start, self.since = np.asarray(box, dtype=float), 0

    def update(self, image):
        self.since += 1
        if self.hold:
            return self.start.copy()
        box = self.truth[image.convert("RGB").tobytes()].copy()
        box[0] += self.drift * self.since
        return box + self.rng.normal(0, self.jitter, 4) * [1, 1, 0, 0]


def _vot_trackers(sequences):
    return {"Perfect": lambda: _SeesGroundTruth("Perfect", sequences),
            "Drifting": lambda: _SeesGroundTruth("Drifting", sequences, drift=1.5),
            "Identity": lambda: _SeesGroundTruth("Identity", sequences, hold=True),
            "Jitter": lambda: _SeesGroundTruth("Jitter", sequences, drift=2.0, jitter=3.0)}


@pytest.mark.parametrize("dataset, polygons", [("VOT2018", True), ("VOT2013", False)])
def test_vot_supervised_matches_toolkit(tmp_path, monkeypatch, dataset, polygons):
    """24 frames a sequence: the toolkit's speed counts each frame of a one-repetition sequence
    min(15, frames) times, which is the plain mean only from 15 frames on."""
    root = write_vot(tmp_path / "vot", source(tmp_path / "src", 2, 24, seed=11), polygons=polygons)
    benchmark = BENCHMARKS[dataset]
    names, _ = select_sequences(benchmark, root, None)
    sequences = load_benchmark(benchmark, root, None, names)
    result_dir = tmp_path / "results" / dataset
    trackers = _vot_trackers(sequences)
    run_jobs(make_jobs(trackers, sequences, result_dir, benchmark.results))
    summary = _ours(dataset, root, None, result_dir, tmp_path, trackers=tuple(trackers))
    monkeypatch.setattr(toolkit_vot, "VOT", lambda root_dir, version, **kw: VOT(
        root_dir, version, **{**kw, "download": False}))
    # the toolkit's VOT code predates NumPy 2 (np.NaN; an array of its one-pair IoUs, each of
    # shape (1,), mixed with NaNs): two shims that keep every value
    monkeypatch.setattr(np, "NaN", np.nan, raising=False)
    monkeypatch.setattr(toolkit_vot, "poly_iou", lambda a, b, bound=None: float(
        poly_iou(np.asarray(a), np.asarray(b), bound)[0]))
    experiment = _toolkit(ExperimentVOT, root, result_dir, tmp_path, version=int(dataset[3:]),
                          experiments="supervised")
    performance = experiment.report(list(trackers))
    for name in trackers:
        ours, theirs = summary["trackers"][name], performance[name]
        assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-12)
        assert ours["robustness"] == pytest.approx(theirs["robustness"], abs=1e-12)
        assert ours["fps"] == pytest.approx(theirs["speed_fps"], rel=1e-9)
    perfect, drifting = summary["trackers"]["Perfect"], summary["trackers"]["Drifting"]
    assert perfect["failures"] == 0 and drifting["failures"] > 0 and drifting["accuracy"] > 0
    assert summary["trackers"]["Identity"]["accuracy"] < perfect["accuracy"]
    assert summary["trackers"]["Jitter"]["per_sequence"][names[0]]["repetitions"] == 15
    assert perfect["per_sequence"][names[0]]["repetitions"] == 1
    # the toolkit's own supervised loop writes the very records ours wrote
    experiment.result_dir = str(tmp_path / "tk_results")
    for name in ("Perfect", "Drifting", "Identity"):
        experiment.run_supervised(trackers[name]())
        for seq in names:
            theirs = Path(experiment.result_dir, name, "baseline", seq, f"{seq}_001.txt")
            assert vot_record_path(result_dir, name, seq, 1).read_text() == theirs.read_text()
            assert len(vot_record_files(result_dir, name, seq)) == 1
