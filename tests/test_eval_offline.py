"""tools/eval.py on every --dataset with the network unreachable (the got10k toolkit's download
helpers, wget, urllib and socket connections all raise): each dataset either evaluates, on a
tiny root in its real layout, or says in one line what is missing (UAV123 only says: its
shortest sequence has 109 frames, too long to track here; test_eval.py scores it). VOT results
resume."""
import json
import socket
import urllib.request

import got10k.datasets.otb
import got10k.datasets.tcolor128
import got10k.datasets.vot
import got10k.utils.ioutils
import pytest
import torch
import wget
from benchmark_layouts import (source, write_dtb70, write_lasot, write_nfs, write_tcolor128,
                               write_trackingnet, write_vot)
from helpers import assert_clear_error, run_in_process

from rbsf.checkpoint import model_payload
from rbsf.data.synthetic import write_dataset
from rbsf.eval.datasets import BENCHMARKS
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from tools import eval as eval_tool

FRAMES = 5
WRITERS = {"lasot": write_lasot, "trackingnet": write_trackingnet, "nfs30": write_nfs,
           "nfs240": write_nfs, "tcolor128": write_tcolor128, "dtb70": write_dtb70,
           "vot": write_vot}
PARTIAL = {"OTB2013", "OTB50", "OTB100", "UAV123", "LaSOT", "TrackingNet", "NfS30", "NfS240",
           "TColor128", "DTB70"}


@pytest.fixture
def offline(monkeypatch):
    """Every way out to the network raises; the calls are listed."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args}")
    for module in (got10k.utils.ioutils, got10k.datasets.otb, got10k.datasets.vot,
                   got10k.datasets.tcolor128, wget):
        monkeypatch.setattr(module, "download", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield
    assert attempts == []


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("offline")
    torch.manual_seed(0)
    save_atomic(model_payload(SiamFCNet("rbconv", width=0.25)), base / "weights" / "rbsf.pt")
    return base


_ROOTS = {}


def _root(base, layout):
    """A tiny root of ``layout`` (two sequences), written once per module."""
    if layout not in _ROOTS:
        where = base / "roots" / layout
        if layout == "uav123":     # the layout's folders, without a sequence
            (where / "anno" / "UAV123").mkdir(parents=True)
            (where / "data_seq" / "UAV123").mkdir(parents=True)
        elif layout in WRITERS:
            WRITERS[layout](where, source(base / "src" / layout, 2, FRAMES, seed=12,
                                          size=(96, 72)))
        else:
            write_dataset(str(where), layout, 2, FRAMES, seed=12, frame_size=(96, 72))
        _ROOTS[layout] = where
    return _ROOTS[layout]


def _eval(base, capsys, *args, out=None):
    out = out or base
    return run_in_process(eval_tool.main, ["--result-dir", out / "res", "--report-dir",
                                           out / "rep", "--trackers", "rbsf", "--weights-dir",
                                           base / "weights", *args], capsys)


@pytest.mark.parametrize("dataset", list(BENCHMARKS))
def test_every_dataset_evaluates_or_says_what_is_missing(dataset, base, capsys, offline,
                                                         monkeypatch):
    benchmark = BENCHMARKS[dataset]
    if benchmark.env:
        monkeypatch.setenv(benchmark.env, str(base / "nowhere"))
        assert_clear_error(_eval(base, capsys, "--dataset", dataset), "does not exist",
                           benchmark.env)
    (base / "empty").mkdir(exist_ok=True)
    if dataset != "custom":
        assert_clear_error(_eval(base, capsys, "--dataset", dataset, "--root", base / "empty"),
                           str(base / "empty"))
    args = ["--dataset", dataset, "--root", _root(base, benchmark.layout)]
    if dataset in PARTIAL:
        assert_clear_error(_eval(base, capsys, *args), "missing", "--allow-partial")
        args.append("--allow-partial")
    if dataset == "UAV123":
        return
    if dataset == "VOT2018":
        args += ["--workers", "2"]
    proc = _eval(base, capsys, *args)
    assert proc.returncode == 0, proc.stderr
    report = base / "rep" / benchmark.name
    if benchmark.submission(None):
        assert (report / "RB-SF.zip").is_file() and "submission archive" in proc.stdout
        return
    summary = json.loads((report / "summary.json").read_text())
    assert summary["partial"] == (dataset in PARTIAL)
    assert len(summary["sequences"]) >= 1 and summary["trackers"]["RB-SF"]["fps"] > 0
    for name in ("summary.md",) + (("ar_plot.png",) if benchmark.protocol == "vot" else
                                   ("success_plot.png", "precision_plot.png")):
        assert (report / name).stat().st_size > 0
    if benchmark.protocol == "lasot":
        assert (report / "norm_precision_plot.png").is_file()
        assert "| LaSOT | norm. precision |" in (report / "summary.md").read_text()
    if benchmark.protocol == "vot":
        assert "| VOT" in proc.stdout and "| accuracy |" in proc.stdout


def test_vot_rerun_skips_finished_and_redoes_an_interrupted_sequence(base, tmp_path, capsys,
                                                                     offline, monkeypatch):
    from rbsf.eval import runner
    args = ["--dataset", "VOT2016", "--root", _root(base, "vot")]
    calls = []
    track = runner.track_supervised

    def interrupted_on_the_second(*a):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return track(*a)
    monkeypatch.setattr(runner, "track_supervised", interrupted_on_the_second)
    proc = _eval(base, capsys, *args, out=tmp_path)
    assert proc.returncode == 130
    folder = tmp_path / "res" / "VOT2016" / "RB-SF" / "baseline"
    assert sorted(p.name for p in folder.glob("*/*.txt")) == ["ants1_001.txt", "ants1_time.txt"]
    rerun = _eval(base, capsys, *args, out=tmp_path)
    assert rerun.returncode == 0 and "1 finished sequence result(s)" in rerun.stdout
    assert len(list(folder.glob("*/*.txt"))) == 4
