"""Our reports against the got10k toolkit's own report() on the same result files.

Three made-up trackers write results in our runner's layout: a perfect one (the ground truth),
an identity one (the first box forever) and a noisy one (ground truth plus noise). The toolkit's
ExperimentOTB / ExperimentUAV123 / ExperimentGOT10k then score those very files.
"""
import zipfile
from pathlib import Path

import numpy as np
import pytest
from got10k.datasets import OTB
from got10k.experiments import ExperimentGOT10k, ExperimentOTB, ExperimentUAV123
from got10k.experiments import otb as toolkit_otb

from rbsf.data.synthetic import write_dataset
from rbsf.eval.datasets import BENCHMARKS, otb_version_names, select_sequences
from rbsf.eval.loading import load_benchmark
from rbsf.eval.report import build_summary, submission_archives, write_report
from rbsf.eval.runner import EvalError, write_result

FAKE = ("Perfect", "Identity", "Noisy")


def _fake_results(sequences, result_dir, got10k, seed=0):
    rng = np.random.default_rng(seed)
    for seq in sequences:
        gt = np.nan_to_num(seq.boxes, nan=0.0)
        noisy = gt + rng.normal(0, 6, size=gt.shape)
        noisy[:, 2:] = np.maximum(noisy[:, 2:], 1)
        results = {"Perfect": gt, "Identity": np.repeat(gt[:1], len(gt), axis=0), "Noisy": noisy}
        for name, boxes in results.items():
            times = rng.uniform(0.01, 0.2, len(gt))
            write_result(result_dir, name, seq.name, boxes, times, got10k)


def _ours(dataset, root, subset, result_dir, tmp_path):
    benchmark = BENCHMARKS[dataset]
    names, missing = select_sequences(benchmark, root, subset, allow_partial=True)
    sequences = load_benchmark(benchmark, root, subset, names)
    _fake_results(sequences, result_dir, benchmark.layout == "got10k")
    summary = build_summary(benchmark.name, benchmark.protocol, sequences, result_dir, FAKE,
                            missing, subset)
    write_report(summary, tmp_path / "report")
    return summary


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
            assert ours["per_sequence"][seq]["success_auc"] == pytest.approx(values["success_score"])
    assert summary["trackers"]["Perfect"]["success_auc"] == pytest.approx(20 / 21)
    assert summary["trackers"]["Identity"]["success_auc"] < summary["trackers"]["Perfect"]["success_auc"]


def test_otb_matches_toolkit_report(tmp_path, monkeypatch):
    root = write_dataset(str(tmp_path / "otb"), "otb", 3, 12, seed=1, frame_size=(96, 72))
    result_dir = tmp_path / "results" / "OTB100"
    summary = _ours("OTB100", root, None, result_dir, tmp_path)
    assert summary["partial"] and len(summary["missing"]) == len(otb_version_names("tb100")) - 3
    # ExperimentOTB always builds OTB(..., download=True): make it build the local subset only
    monkeypatch.setattr(toolkit_otb, "OTB", lambda root_dir, version, download: OTB(
        root_dir, version, download=False))
    experiment = ExperimentOTB(str(root), version="tb100", result_dir=str(tmp_path / "tk"),
                               report_dir=str(tmp_path / "tk_report"))
    experiment.result_dir = str(result_dir)
    _compare_otb(summary, experiment.report(list(FAKE)))


def test_uav123_matches_toolkit_report(tmp_path):
    root = write_dataset(str(tmp_path / "uav"), "uav123", 1, 2, seed=2, frame_size=(64, 48))
    result_dir = tmp_path / "results" / "UAV123"
    summary = _ours("UAV123", root, None, result_dir, tmp_path)
    experiment = ExperimentUAV123(str(root), result_dir=str(tmp_path / "tk"),
                                  report_dir=str(tmp_path / "tk_report"))
    experiment.result_dir = str(result_dir)
    _compare_otb(summary, experiment.report(list(FAKE)))


def test_got10k_val_matches_toolkit_report(tmp_path):
    root = write_dataset(str(tmp_path / "got"), "got10k", 2, 12, seed=3, frame_size=(96, 72))
    result_dir = tmp_path / "results" / "GOT-10k"
    summary = _ours("GOT10k", root, "val", result_dir, tmp_path)
    experiment = ExperimentGOT10k(str(root), subset="val", result_dir=str(tmp_path / "tk"),
                                  report_dir=str(tmp_path / "tk_report"))
    experiment.result_dir = str(result_dir)
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
    _fake_results(sequences, result_dir, got10k=True)
    write_result(result_dir, "Identity", "GOT-10k_Val_000001", np.zeros((5, 4)), np.ones(5), True)
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
