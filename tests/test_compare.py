"""Paired per-sequence comparison of a report's trackers (rbsf.eval.compare and its driver)."""
import json
import math

import pytest

from experiments import compare_trackers
from rbsf.eval.compare import CompareError, compare, markdown
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


def test_driver_compares_trackers_of_several_reports(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({**_summary(), "root": "data/x"}))
    second.write_text(json.dumps({"root": "data/x",
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
