"""Paired per-sequence comparison of a report's trackers (rbsf.eval.compare and its driver)."""
import json
import math

import numpy as np
import pytest

from experiments import compare_trackers
from rbsf.eval.compare import CompareError, clustered_error, compare, markdown
from tests.helpers import assert_clear_error, run_in_process


def _summary() -> dict:
    def seqs(**scores):
        return {"per_sequence": {name: {"success_auc": value, "precision_20": 1.0}
                                 for name, value in scores.items()}}
    # s4 is A's alone: only the sequences every tracker has count
    return {"trackers": {"A": seqs(s1=0.5, s2=0.7, s3=0.4, s4=0.9),
                         "B": seqs(s1=0.6, s2=0.65, s3=0.41)}}


def test_differences_by_hand():
    rows = compare(_summary(), "A")
    assert [r["tracker"] for r in rows] == ["A", "B"]
    base, other = rows
    assert base["sequences"] == 3 and base["mean"] == pytest.approx(1.6 / 3)
    assert base["difference"] == 0 and base["level"] == 3
    # B - A per sequence: +0.1, -0.05, +0.01; mean 0.02; deviations 0.08, -0.07, -0.01
    assert other["difference"] == pytest.approx(0.02)
    assert other["standard_error"] == pytest.approx(math.sqrt(0.0114 / 2) / math.sqrt(3))
    assert (other["ahead"], other["level"], other["behind"]) == (1, 1, 1)
    table = markdown(rows, "success_auc", 0.02)
    assert "| B | 0.553 | +0.020 ± 0.044 | 1 | 1 | 1 |" in table


def test_base_can_be_any_tracker_and_one_sequence_has_no_error():
    summary = {"trackers": {"A": {"per_sequence": {"s": {"success_auc": 0.2}}},
                            "B": {"per_sequence": {"s": {"success_auc": 0.5}}}}}
    rows = compare(summary, "B")
    assert rows[1]["tracker"] == "A" and rows[1]["difference"] == pytest.approx(-0.3)
    assert rows[1]["standard_error"] is None
    assert "| A | 0.200 | -0.300 | 0 | 0 | 1 |" in markdown(rows, "success_auc", 0.02)


@pytest.mark.parametrize("base, metric, margin, phrase", [
    ("C", "success_auc", 0.02, "no tracker 'C'"),
    ("A", "ao", 0.02, "choose from precision_20, success_auc"),
    ("A", "success_auc", -1.0, "margin"),
])
def test_bad_requests_are_refused(base, metric, margin, phrase):
    with pytest.raises(CompareError, match=phrase):
        compare(_summary(), base, metric, margin)


def test_driver_prints_and_writes_the_table(tmp_path, capsys):
    report = tmp_path / "summary.json"
    report.write_text(json.dumps(_summary()))
    proc = run_in_process(compare_trackers.main,
                          [report, "--base", "A", "--out", tmp_path / "cmp"], capsys)
    assert proc.returncode == 0 and "| B | 0.553 | +0.020 ± 0.044 | 1 | 1 | 1 |" in proc.stdout
    record = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert record["rows"][1]["ahead"] == 1
    assert (tmp_path / "cmp" / "comparison.md").read_text() in proc.stdout


@pytest.mark.parametrize("content, phrase", [(None, "cannot read the report"),
                                             ("[1, 2]", "not a report"),
                                             ("{not json", "cannot read the report")])
def test_driver_refuses_what_is_not_a_report(tmp_path, capsys, content, phrase):
    report = tmp_path / "summary.json"
    if content is not None:
        report.write_text(content)
    assert_clear_error(run_in_process(compare_trackers.main, [report, "--base", "A"], capsys),
                       phrase)


@pytest.mark.parametrize("spelling", ["data/x", "./data//x/"])    # one folder, two spellings
def test_driver_compares_trackers_of_several_reports(tmp_path, capsys, spelling):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({**_summary(), "root": "data/x"}))
    second.write_text(json.dumps({"root": spelling,
                                  "trackers": {"A": _summary()["trackers"]["B"]}}))
    proc = run_in_process(compare_trackers.main, [first, f"{second}=new", "--base", "A"], capsys)
    assert proc.returncode == 0
    assert "| new: A | 0.553 | +0.020 ± 0.044 | 1 | 1 | 1 |" in proc.stdout
    # unlabelled, the two reports' trackers A clash
    assert_clear_error(run_in_process(compare_trackers.main, [first, second, "--base", "A"],
                                      capsys), "label one of them")


def test_driver_refuses_reports_of_different_roots(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({**_summary(), "root": "data/x"}))
    second.write_text(json.dumps({**_summary(), "root": "data/y"}))
    assert_clear_error(run_in_process(compare_trackers.main,
                                      [first, f"{second}=other", "--base", "A"], capsys),
                       "different sequences")
    # pooled, the same scores twice: six sequences, the same mean difference, the deviations'
    # squares doubled over five degrees of freedom
    proc = run_in_process(compare_trackers.main,
                          [first, second, "--base", "A", "--pool"], capsys)
    assert "over 6 sequences" in proc.stdout and "Left out" not in proc.stdout
    error = math.sqrt(2 * 0.0114 / 5) / math.sqrt(6)
    assert f"| B | 0.553 | +0.020 ± {error:.3f} | 2 | 2 | 2 |" in proc.stdout


def test_clustered_error_by_hand():
    diff = np.array([0.1, 0.3, -0.2, 0.0])
    # mean 0.05; deviations summed per group: a 0.05 + 0.25, b -0.25, c -0.05
    expected = math.sqrt(3 / 2 * (0.3 ** 2 + 0.25 ** 2 + 0.05 ** 2)) / 4
    assert clustered_error(diff, ["a", "a", "b", "c"]) == pytest.approx(expected)
    # every value its own group: the plain standard error
    assert clustered_error(diff, ["a", "b", "c", "d"]) == pytest.approx(
        diff.std(ddof=1) / math.sqrt(4))
    assert clustered_error(diff, ["a"] * 4) is None


def test_compare_adds_the_clustered_error_and_wants_every_group():
    rows = compare(_summary(), "A", groups={"s1": "x", "s2": "x", "s3": "y"})
    # B - A: +0.1, -0.05 (group x), +0.01 (y); mean 0.02
    expected = math.sqrt(2 * ((0.08 - 0.07) ** 2 + 0.01 ** 2)) / 3
    assert rows[1]["groups"] == 2 and rows[1]["clustered_error"] == pytest.approx(expected)
    assert "| B | 0.553 | +0.020 ± 0.044 | ± 0.007 | 1 | 1 | 1 |" in markdown(
        rows, "success_auc", 0.02, "target")
    with pytest.raises(CompareError, match="no group is given for 1 sequence"):
        compare(_summary(), "A", groups={"s1": "x", "s2": "x"})


def _rendered_set(folder, targets: dict, trackers: dict, tmp_path, name: str):
    """A sequence folder with its dataset.json, and a report on it."""
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"targets": targets}))
    report = tmp_path / f"{name}.json"
    report.write_text(json.dumps({"root": str(folder), "trackers": trackers}))
    return report


def test_driver_pools_sets_and_clusters_by_target(tmp_path, capsys):
    def seqs(**scores):
        return {"per_sequence": {name: {"success_auc": value} for name, value in scores.items()}}
    first = _rendered_set(tmp_path / "i", {"s1": "fox", "s2": "owl"},
                          {"A": seqs(s1=0.5, s2=0.7), "B": seqs(s1=0.6, s2=0.65),
                           "C": seqs(s1=0.1, s2=0.1)}, tmp_path, "i")
    second = _rendered_set(tmp_path / "j", {"s1": "fox"},
                           {"A": seqs(s1=0.4), "B": seqs(s1=0.41)}, tmp_path, "j")
    # without --pool, two folders are refused
    assert_clear_error(run_in_process(compare_trackers.main, [first, second, "--base", "A"],
                                      capsys), "--pool")
    proc = run_in_process(compare_trackers.main,
                          [first, second, "--base", "A", "--pool", "--cluster-by", "target",
                           "--out", tmp_path / "cmp"], capsys)
    assert proc.returncode == 0, proc.stderr
    # B - A: i/s1 +0.1 (fox), i/s2 -0.05 (owl), j/s1 +0.01 (fox): the plain numbers of the
    # single-report case; deviations summed per target: fox 0.08 - 0.01, owl -0.07
    assert f"{math.sqrt(2 * (0.07 ** 2 + 0.07 ** 2)) / 3:.3f}" == "0.047"
    assert "| B | 0.553 | +0.020 ± 0.044 | ± 0.047 | 1 | 1 | 1 |" in proc.stdout
    assert "clustered by target (2 groups)" in proc.stdout
    assert "Left out, not on every folder: C." in proc.stdout
    record = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert record["left_out"] == ["C"] and record["rows"][1]["sequences"] == 3


def test_driver_cluster_by_needs_the_sets_manifest(tmp_path, capsys):
    report = tmp_path / "summary.json"
    report.write_text(json.dumps({**_summary(), "root": str(tmp_path / "gone")}))
    assert_clear_error(run_in_process(compare_trackers.main,
                                      [report, "--base", "A", "--cluster-by", "background"],
                                      capsys), "dataset.json for --cluster-by (No such file")
    _rendered_set(tmp_path / "old", {"s1": "fox"}, _summary()["trackers"], tmp_path, "old")
    assert_clear_error(run_in_process(compare_trackers.main,
                                      [tmp_path / "old.json", "--base", "A", "--cluster-by",
                                       "background"], capsys), "names no backgrounds")
    report.write_text(json.dumps(_summary()))
    assert_clear_error(run_in_process(compare_trackers.main,
                                      [report, "--base", "A", "--cluster-by", "target"],
                                      capsys), "name no sequence folder")
