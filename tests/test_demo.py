"""tools/demo.py end to end (as a subprocess, headless) and the rbsf.video pieces it wraps."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import run_in_process, start_interruptible

from rbsf import video
from rbsf.checkpoint import model_payload
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from rbsf.video import (FrameSource, VideoError, check_box, draw_overlay, parse_box,
                        read_groundtruth_box)
from tools import demo as demo_tool

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tools" / "demo.py"
WIDTH, HEIGHT, PATCH = 240, 180, 30


def write_clip(path: Path, frames: int = 24, fps: float = 25.0, fourcc: str = "mp4v"):
    """A textured patch moving right and along a sine over a plain background; returns its boxes."""
    texture = np.random.default_rng(0).integers(0, 256, (PATCH, PATCH, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    boxes = []
    for i in range(frames):
        frame = np.full((HEIGHT, WIDTH, 3), 120, np.uint8)
        x = 20 + (150 * i) // max(frames - 1, 1)
        y = int(round(70 + 40 * np.sin(i / 4)))
        frame[y:y + PATCH, x:x + PATCH] = texture
        writer.write(frame)
        boxes.append((x, y, PATCH, PATCH))
    writer.release()
    return np.array(boxes, dtype=np.float64)


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    return count


def read_boxes(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def centres(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + (boxes[:, 2:] - 1) / 2


def headless_env(display: str = ""):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display:
        env["DISPLAY"] = display
    env["OMP_NUM_THREADS"] = "1"
    return env


def demo(*args, cwd: Path = ROOT, display: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEMO), "--quiet", *map(str, args)], cwd=cwd,
                          env=headless_env(display), capture_output=True, text=True, timeout=120)


@pytest.fixture
def demo_here(capsys, monkeypatch):
    """The tool in this process (no interpreter start-up), headless, same outputs."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    return lambda *args: run_in_process(demo_tool.main, ["--quiet", *args], capsys)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Tiny models (random weights) and a 24-frame clip with its true boxes."""
    root = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0)
    save_atomic(model_payload(SiamFCNet("fp", width=0.25)), root / "fp.pt")
    save_atomic(model_payload(SiamFCNet("rbconv", width=0.25)), root / "rbsf.pt")
    truth = write_clip(root / "clip.mp4")
    return root, truth


def test_headless_run_writes_video_and_boxes_that_follow_the_target(work):
    root, truth = work
    out = root / "out" / "tracked.mp4"
    result = demo("--video", root / "clip.mp4",
                  "--init-box", ",".join(map(str, truth[0].astype(int))),
                  "--tracker", "siamfc", "--weights", root / "fp.pt", "--output", out)
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == len(truth)
    boxes = read_boxes(out.with_suffix(".txt"))
    assert boxes.shape == (len(truth), 4)
    np.testing.assert_allclose(boxes[0], truth[0])
    # a random-weight full-precision SiamFC follows a high-contrast patch by correlation; the
    # patch travels 150 px, so a box left behind fails at once
    errors = np.linalg.norm(centres(boxes) - centres(truth), axis=1)
    assert errors.max() < 8, errors.round(1)
    assert str(out.resolve()) in result.stdout and "24 frames tracked" in result.stdout


def test_output_video_shows_box_and_text(work):
    """Also: a DISPLAY that cannot be reached falls back to headless (Qt would abort the process)."""
    root, truth = work
    out = root / "overlay.mp4"
    result = demo("--video", root / "clip.mp4", "--init-box", "20,70,30,30",
                  "--weights", root / "rbsf.pt", "--output", out, "--max-frames", 3, display=":987")
    assert result.returncode == 0, result.stderr
    capture = cv2.VideoCapture(str(out))
    frame = capture.read()[1].astype(int)
    panel = frame[:20, :60]
    assert (panel.max(axis=2) > 200).any() and (panel.max(axis=2) < 60).any()  # white text on dark
    edge = frame[70:100, 20]  # left edge of the box: green
    assert np.median(edge[:, 1] - edge[:, [0, 2]].max(axis=1)) > 100
    assert count_frames(out) == 3 and len(read_boxes(out.with_suffix(".txt"))) == 3


@pytest.mark.parametrize("max_frames", [None, 20])
def test_realtime_skips_frames_but_keeps_one_box_per_source_frame(work, max_frames):
    root, _ = work
    fast = root / "fast.mp4"
    write_clip(fast, frames=30, fps=500.0)  # no tracker keeps up with 500 fps
    out = root / f"realtime{max_frames}.mp4"
    limit = ["--max-frames", max_frames] if max_frames else []
    result = demo("--video", fast, "--init-box", "20,70,30,30", "--weights", root / "rbsf.pt",
                  "--output", out, "--boxes", root / "realtime_boxes.txt", "--realtime", *limit)
    assert result.returncode == 0, result.stderr
    expected = max_frames or 30
    processed = count_frames(out)
    assert 1 <= processed < expected
    assert len(read_boxes(root / "realtime_boxes.txt")) == expected
    assert f"{processed} frames tracked, skipped {expected - processed}" in result.stdout


def test_broken_stream_finishes_outputs(work):
    root, _ = work
    full = root / "full.avi"
    write_clip(full, frames=30, fourcc="MJPG")
    data = full.read_bytes()
    broken = root / "broken.avi"
    broken.write_bytes(data[:len(data) // 2])
    out = root / "broken_out.mp4"
    result = demo("--video", broken, "--init-box", "20,70,30,30", "--weights", root / "rbsf.pt",
                  "--output", out)
    assert result.returncode == 0, result.stderr
    decoded = count_frames(broken)
    assert 1 < decoded < 30
    assert count_frames(out) == decoded == len(read_boxes(out.with_suffix(".txt")))
    assert "ended early" in result.stdout


def test_ctrl_c_finishes_outputs(work):
    root, _ = work
    long_clip = root / "long.mp4"
    write_clip(long_clip, frames=400)
    out = root / "interrupted.mp4"
    boxes = out.with_suffix(".txt")
    process = start_interruptible([sys.executable, str(DEMO), "--quiet", "--video",
                                   str(long_clip), "--init-box", "20,70,30,30", "--weights",
                                   str(root / "rbsf.pt"), "--output", str(out)], cwd=ROOT,
                                  env=headless_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (boxes.is_file()
                                          and len(boxes.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "interrupted (Ctrl-C)" in stdout
    lines = len(read_boxes(boxes))
    assert 3 <= lines < 400
    assert count_frames(out) == lines


@pytest.mark.parametrize("case, args, message", [
    ("missing video", ["--video", "{root}/nope.mp4", "--init-box", "1,1,5,5"], "video not found"),
    ("undecodable", ["--video", "{root}/garbage.mp4", "--init-box", "1,1,5,5"],
     "OpenCV cannot decode"),
    ("outside", ["--video", "{root}/clip.mp4", "--init-box", "300,10,20,20"],
     "outside the 240x180 frame"),
    ("zero size", ["--video", "{root}/clip.mp4", "--init-box", "10,10,0,20"],
     "zero or negative size"),
    ("malformed", ["--video", "{root}/clip.mp4", "--init-box", "10,10,20"], "not four numbers"),
    ("no webcam", ["--webcam", "99", "--init-box", "1,1,5,5"], "no webcam at index 99"),
    ("headless, no box", ["--video", "{root}/clip.mp4"], "pass --init-box"),
    ("missing weights", ["--video", "{root}/clip.mp4", "--init-box", "20,70,30,30", "--weights",
                         "{root}/none.pt"], "checkpoint not found"),
    ("past the end", ["--video", "{root}/clip.mp4", "--start-frame", "50", "--init-box", "1,1,5,5"],
     "past its end"),
    ("bad settings", ["--video", "{root}/clip.mp4", "--init-box", "20,70,30,30", "--params",
                      "{root}/none.json"], "cannot read tracker settings"),
    ("int8 on a float model", ["--video", "{root}/clip.mp4", "--init-box", "20,70,30,30",
                               "--tracker", "packed-int8", "--weights", "{root}/fp.pt"],
     "not the packed RB-SF model"),
])
def test_bad_input_is_one_line_and_exit_2(work, case, args, message):
    root, _ = work
    (root / "garbage.mp4").write_bytes(np.random.default_rng(1).bytes(4000))
    result = demo(*[a.format(root=root) for a in args], "--output", root / "never.mp4")
    assert result.returncode == 2, (case, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (root / "never.mp4").exists()


def test_no_arguments_tracks_the_real_sample_clip(tmp_path):
    """The main job: the shipped real clip (a red bow tie), the shipped packed weights with the
    8-bit conv1, and boxes that follow the ground truth made by colour segmentation."""
    result = demo("--max-frames", 40, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "demo" / "carphone_bowtie_packed-int8.mp4"
    boxes = read_boxes(out.with_suffix(".txt"))
    assert count_frames(out) == 40 and len(boxes) == 40
    truth = np.loadtxt(ROOT / "data" / "heldout" / "carphone_bowtie_groundtruth.txt",
                       delimiter=",")[:40]
    assert np.median(np.hypot(*(centres(boxes) - centres(truth)).T)) < 10
    assert str(out.resolve()) in result.stdout
    # the settings shipped beside the weights, tuned for them, and said so
    shipped = ROOT / "data" / "weights" / "tracking.json"
    assert f"settings: {shipped} (scale_step=1.06" in result.stdout


@pytest.mark.parametrize("tracker", ["packed", "packed-int8"])
def test_packed_trackers_run_the_shipped_model(tmp_path, tracker):
    weights = ROOT / "data" / "weights" / "rbsf.packed"
    if not weights.is_file():
        pytest.skip("needs data/weights/rbsf.packed")
    result = demo("--tracker", tracker, "--max-frames", 4, "--output", tmp_path / "p.mp4")
    assert result.returncode == 0, result.stderr
    assert len(read_boxes(tmp_path / "p.txt")) == 4
    assert ("RB-SF packed int8" in result.stdout) == (tracker == "packed-int8")


def test_box_parsing_and_checks(tmp_path):
    assert parse_box("1, 2.5,3\t4") == (1.0, 2.5, 3.0, 4.0)
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,nan"):
        with pytest.raises(VideoError):
            parse_box(bad)
    assert check_box((-5, -5, 10, 10), 100, 50) == (-5.0, -5.0, 10.0, 10.0)  # overlaps: kept
    for bad in ((100, 0, 5, 5), (0, -10, 5, 10), (1, 1, 5, -1)):
        with pytest.raises(VideoError):
            check_box(bad, 100, 50)
    gt = tmp_path / "groundtruth_rect.txt"
    gt.write_text("1,2,3,4\n5\t6\t7\t8\n")
    assert read_groundtruth_box(gt, 1) == (5.0, 6.0, 7.0, 8.0)
    with pytest.raises(VideoError, match="none for frame 2"):
        read_groundtruth_box(gt, 2)


def test_frame_source_start_frame_and_rgb(work, tmp_path):
    root, _ = work
    source = FrameSource.open_file(root / "clip.mp4", start_frame=5)
    indices = [index for index, _ in source.frames()]
    assert indices == list(range(5, 24)) and not source.broken
    source.close()
    red = tmp_path / "red.avi"
    writer = cv2.VideoWriter(str(red), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    writer.write(np.dstack([np.zeros((32, 32), np.uint8)] * 2 + [np.full((32, 32), 255, np.uint8)]))
    writer.release()
    r, g, b = FrameSource.open_file(red).first[16, 16].astype(int)
    assert r > 200 and g < 60 and b < 60  # trackers get RGB


def test_overlay_draws_a_green_box():
    bgr = np.zeros((60, 80, 3), np.uint8)
    draw_overlay(bgr, (10, 30, 20, 20), ["x"])
    b, g, r = bgr[40, 10].astype(int)
    assert g > 200 and b < 50 and r < 50


@pytest.mark.parametrize("case, args, message", [
    ("output is the video", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/in.mp4"],
     "--output {tmp}/in.mp4 is the input video"),
    ("box file is the ground truth", ["--video", "{tmp}/in.mp4", "--groundtruth", "{tmp}/gt.txt",
                                      "--output", "{tmp}/gt.mp4"], "is the --groundtruth file"),
    ("boxes onto the video", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/o.mp4",
                              "--boxes", "{tmp}/in.mp4"],
     "--boxes {tmp}/in.mp4 is the input video"),
    ("boxes onto the weights", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/o.mp4",
                                "--boxes", "{tmp}/w.pt"], "is the --weights file"),
    ("boxes and video clash", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/o.mp4",
                               "--boxes", "{tmp}/o.mp4"], "are both {tmp}/o.mp4"),
    ("output under a file", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/gt.txt/o.mp4"],
     "is a file, not a folder"),
    ("output is a folder", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/dir.mp4"], "is a folder"),
    ("boxes under a file", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/o.mp4",
                            "--boxes", "{tmp}/in.mp4/b.txt"], "is a file, not a folder"),
    ("not a video suffix", ["--video", "{tmp}/in.mp4", "--output", "{tmp}/o.txt"], "must end in"),
])
def test_outputs_onto_inputs_or_unwritable_are_refused_before_tracking(work, tmp_path, demo_here,
                                                                         case, args, message):
    """No run writes over its video, ground truth or weights, nor two outputs on one path."""
    root, truth = work
    (tmp_path / "in.mp4").write_bytes((root / "clip.mp4").read_bytes())
    (tmp_path / "gt.txt").write_text("\n".join(",".join(map(str, b.astype(int))) for b in truth))
    (tmp_path / "w.pt").write_bytes((root / "rbsf.pt").read_bytes())
    (tmp_path / "dir.mp4").mkdir()
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    box = [] if "--groundtruth" in args else ["--init-box", "20,70,30,30"]
    result = demo_here(*[a.format(tmp=tmp_path) for a in args], *box, "--weights",
                       tmp_path / "w.pt", "--max-frames", 2)
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message.format(tmp=tmp_path) in lines[0], lines
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.mp4", "gt.txt", "in.mp4", "w.pt"]
    assert list((tmp_path / "dir.mp4").iterdir()) == []


def test_webcam_index_is_checked_before_opencv_sees_it(tmp_path, demo_here):
    """-1 made OpenCV segfault (exit 139, so that case runs in its own process); indices from
    100 on select an OpenCV backend instead of a camera, and past 2**31 OpenCV raised a
    TypeError."""
    results = [demo("--webcam", -1, "--init-box", "1,1,5,5", "--output", tmp_path / "w.mp4")]
    results += [demo_here("--webcam", index, "--init-box", "1,1,5,5",
                          "--output", tmp_path / "w.mp4")
                for index in ("-5", "100", "2147483648", "1.5")]
    for result in results:
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "--webcam" in lines[0], lines
    assert "0..99" in results[0].stderr
    assert not list(tmp_path.iterdir())
    with pytest.raises(VideoError, match="out of range"):
        FrameSource.open_camera(-1)


def test_unfinished_training_checkpoint_is_named_as_such(work, tmp_path, demo_here):
    root, _ = work
    net = SiamFCNet("rbconv", width=0.25)
    save_atomic(model_payload(net, stage="rbsf", finished=False, epoch=2, step=40,
                              train_config={"stages": {"rbsf": {"epochs": 10}}}),
                tmp_path / "last.pt")
    result = demo_here("--video", root / "clip.mp4", "--init-box", "20,70,30,30", "--weights",
                       tmp_path / "last.pt", "--output", tmp_path / "o.mp4", "--max-frames", 2)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "unfinished rbsf training: epoch 2 of 10, step 40" in warnings[0]
    finished = demo_here("--video", root / "clip.mp4", "--init-box", "20,70,30,30", "--weights",
                         root / "rbsf.pt", "--output", tmp_path / "o.mp4", "--max-frames", 2)
    assert finished.returncode == 0 and "warning" not in finished.stderr


def test_opencv_logs_are_silenced_and_restored_under_opencv_4_too(monkeypatch):
    """OpenCV 4 has no cv2.utils.logging, only cv2.getLogLevel / cv2.setLogLevel."""
    calls = []
    monkeypatch.delattr(cv2.utils, "logging", raising=False)
    monkeypatch.setattr(cv2, "getLogLevel", lambda: 3, raising=False)
    monkeypatch.setattr(cv2, "setLogLevel", calls.append, raising=False)
    with video._quiet_opencv():
        assert calls == [video.LOG_LEVEL_SILENT]
    assert calls == [video.LOG_LEVEL_SILENT, 3]
