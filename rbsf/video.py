"""Video in and out for the demo: frame sources, real-time frame skipping, overlays, result files.

Frames handed to trackers are H x W x 3 uint8 RGB arrays; OpenCV's BGR stays inside this module.
Boxes are (x, y, w, h) with (x, y) the top-left corner (OTB convention). Nothing here imports
torch, so bad input is reported before a model is loaded.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from tqdm import tqdm

from rbsf.errors import RBSFError

Box = Tuple[float, float, float, float]
Frame = Tuple[int, np.ndarray]
PathLike = Union[str, os.PathLike]

DEFAULT_FPS = 30.0
FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
QUIT_KEYS = (ord("q"), 27)  # q, Esc
CAMERA_INDICES = range(100)  # OpenCV reads an index from 100 on as backend * 100 + camera


class VideoError(RBSFError, ValueError):
    """Bad demo input (video, camera, box, output path), with a one-line reason."""


LOG_LEVEL_SILENT = 0   # OpenCV's level that prints nothing (cv::utils::logging::LOG_LEVEL_SILENT)


def _log_level_functions():
    """OpenCV's (get, set) of its log level: in ``cv2.utils.logging`` in OpenCV 5, at the top
    of ``cv2`` in OpenCV 4."""
    logging = getattr(cv2.utils, "logging", None)
    if logging is not None:
        return logging.getLogLevel, logging.setLogLevel
    return cv2.getLogLevel, cv2.setLogLevel


@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's own log lines (failed backends) so the caller's message stands alone."""
    get_level, set_level = _log_level_functions()
    level = get_level()
    set_level(LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        set_level(level)


# ----------------------------------------------------------------------------- boxes


def parse_box(text: str) -> Box:
    """Parse ``"x,y,w,h"`` (commas, tabs or spaces) into a box; ``VideoError`` when malformed."""
    parts = text.replace(",", " ").replace("\t", " ").split()
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)):
        raise VideoError(f"box {text.strip()!r} is not four numbers x,y,w,h "
                         f"(e.g. --init-box 120,80,40,60)")
    return values  # type: ignore[return-value]


def read_groundtruth_box(path: PathLike, frame: int = 0) -> Box:
    """Box of 0-based ``frame`` in an OTB / GOT-10k groundtruth file (one x,y,w,h per line)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"groundtruth file not found: {path}")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if frame >= len(lines):
        raise VideoError(f"groundtruth file {path} has {len(lines)} boxes, none for frame {frame}")
    return parse_box(lines[frame])


def check_box(box: Sequence[float], width: int, height: int) -> Box:
    """Return ``box`` if it has a positive size and overlaps a ``width`` x ``height`` frame."""
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise VideoError(f"box {_fmt_box(box)} has zero or negative size; width and height "
                         f"must be > 0")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise VideoError(f"box {_fmt_box(box)} lies outside the {width}x{height} frame")
    return x, y, w, h


def _fmt_box(box: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in box)


def format_box(box: Sequence[float]) -> str:
    """One OTB result line: ``x,y,w,h`` with two decimals."""
    return ",".join(f"{float(v):.2f}" for v in box)


# ----------------------------------------------------------------------------- sources


class FrameSource:
    """Frames of a video file or a camera as ``(index, rgb)``; the first frame is read at open.

    ``index`` is the 0-based frame number in the file (counting skipped start frames). A read
    that fails before the file's announced end marks the stream as broken (``broken``).
    """

    def __init__(self, capture: cv2.VideoCapture, name: str, live: bool, start_frame: int = 0):
        self.capture = capture
        self.name = name
        self.live = live
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if np.isfinite(fps) and 1.0 <= fps <= 1000.0 else DEFAULT_FPS
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0
        self.frame_count: Optional[int] = count if count > 0 else None
        self.broken = False
        for skipped in range(start_frame):
            if not self._grab():
                capture.release()
                raise VideoError(f"{name} has only {skipped} frames; --start-frame {start_frame} "
                                 f"is past its end")
        self.index = start_frame
        self.first = self._read()
        if self.first is None:
            capture.release()
            what = "returned no frame" if live else "has no frame OpenCV can decode"
            raise VideoError(f"{name} {what} (is it a video file / a working camera?)")
        self.height, self.width = self.first.shape[:2]
        self._pending: Optional[np.ndarray] = self.first

    @classmethod
    def open_file(cls, path: PathLike, start_frame: int = 0) -> "FrameSource":
        """Open a video file; ``VideoError`` when it is missing or cannot be decoded."""
        path = Path(path)
        if not path.is_file():
            raise VideoError(f"video not found: {path}")
        with _quiet_opencv():
            capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise VideoError(f"OpenCV cannot decode {path}: not a video or an unsupported codec "
                             f"(try converting it to .mp4 / H.264)")
        return cls(capture, str(path), live=False, start_frame=start_frame)

    @classmethod
    def open_camera(cls, index: int) -> "FrameSource":
        """Open camera ``index`` (0..99); ``VideoError`` when there is no such camera. The index
        is checked before OpenCV sees it: a negative one crashes the process inside OpenCV."""
        if index not in CAMERA_INDICES:
            raise VideoError(f"camera index {index} is out of range; cameras are numbered "
                             f"0..{CAMERA_INDICES[-1]}")
        with _quiet_opencv():
            capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            raise VideoError(f"no webcam at index {index} (check that a camera is plugged in "
                             f"and not used by another program, or use --video PATH)")
        return cls(capture, f"webcam {index}", live=True)

    def _grab(self) -> bool:
        with _quiet_opencv():
            try:
                return bool(self.capture.grab())
            except cv2.error:
                return False

    def _read(self) -> Optional[np.ndarray]:
        with _quiet_opencv():
            try:
                ok, bgr = self.capture.read()
            except cv2.error:
                ok, bgr = False, None
        if not ok or bgr is None:
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def read(self) -> Optional[Frame]:
        """Next ``(index, rgb)`` frame, or ``None`` at the end (or on a broken stream)."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return self.index, frame
        frame = self._read()
        if frame is None:
            expected_more = self.frame_count is not None and self.index + 1 < self.frame_count
            self.broken = self.live or expected_more
            return None
        self.index += 1
        return self.index, frame

    def frames(self) -> Iterator[Frame]:
        """Every frame from the start frame on, in order."""
        while True:
            item = self.read()
            if item is None:
                return
            yield item

    def close(self) -> None:
        self.capture.release()


def latest_frames(source: FrameSource) -> Iterator[Frame]:
    """Frames as a real-time consumer sees them: always the newest one, older ones dropped.

    A reader thread pulls frames at the source's own rate (a camera paces itself; a file is
    paced at its fps) and keeps only the latest; a slow consumer therefore skips frames, and
    the gaps show in the yielded indices.
    """
    condition = threading.Condition()
    state = {"frame": None, "done": False}
    stop = threading.Event()

    def reader() -> None:
        start = time.perf_counter()
        count = 0
        while not stop.is_set():
            item = source.read()
            if item is None:
                break
            if not source.live:
                delay = start + count / source.fps - time.perf_counter()
                if delay > 0:
                    stop.wait(delay)
            count += 1
            with condition:
                state["frame"] = item
                condition.notify()
        with condition:
            state["done"] = True
            condition.notify()

    thread = threading.Thread(target=reader, name="frame-reader", daemon=True)
    thread.start()
    try:
        while True:
            with condition:
                while state["frame"] is None and not state["done"]:
                    condition.wait(0.1)
                item, state["frame"] = state["frame"], None
            if item is None:
                return
            yield item
    finally:
        stop.set()
        thread.join()


# ----------------------------------------------------------------------------- outputs


def check_video_path(path: PathLike) -> None:
    """``VideoError`` unless ``path`` ends in a video extension the writer knows."""
    if Path(path).suffix.lower() not in FOURCC:
        raise VideoError(f"output video {path} must end in one of {', '.join(sorted(FOURCC))}")


class VideoOutput:
    """Annotated video file; opened on the first frame (its size is known then)."""

    def __init__(self, path: PathLike, fps: float):
        self.path = Path(path)
        self.fps = fps
        self.frames = 0
        self._writer: Optional[cv2.VideoWriter] = None
        check_video_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VideoError(f"cannot create the folder of {self.path}: {exc.strerror}") from exc

    def write(self, bgr: np.ndarray) -> None:
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            with _quiet_opencv():
                self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps,
                                               (bgr.shape[1], bgr.shape[0]))
            if not self._writer.isOpened():
                raise VideoError(f"OpenCV cannot write the video {self.path} (check the folder "
                                 f"and extension)")
        self._writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class BoxOutput:
    """OTB result file: one ``x,y,w,h`` line per frame, flushed as it goes."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.lines = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w")
        except OSError as exc:
            raise VideoError(f"cannot write the box file {self.path}: {exc.strerror}") from exc

    def write(self, box: Sequence[float]) -> None:
        self._file.write(format_box(box) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._file.close()


def draw_overlay(bgr: np.ndarray, box: Sequence[float], lines: Sequence[str]) -> np.ndarray:
    """Draw the box and a legible text panel (top-left) on a BGR frame, in place."""
    height, width = bgr.shape[:2]
    unit = max(height, width) / 640.0
    thickness = max(1, int(round(2 * unit)))
    x, y, w, h = box
    cv2.rectangle(bgr, (int(round(x)), int(round(y))),
                  (int(round(x + w - 1)), int(round(y + h - 1))),
                  (0, 255, 0), thickness, cv2.LINE_AA)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.4, 0.55 * unit)
    text_thickness = max(1, int(round(unit)))
    sizes = [cv2.getTextSize(line, font, scale, text_thickness) for line in lines]
    line_height = max(size[0][1] + size[1] for size in sizes) + int(4 * unit) + 2
    pad = int(4 * unit) + 2
    panel_w = max(size[0][0] for size in sizes) + 2 * pad
    panel_h = line_height * len(lines) + pad
    region = bgr[:panel_h, :panel_w]
    region[:] = (region * 0.35).astype(np.uint8)
    for i, line in enumerate(lines):
        baseline_y = pad + (i + 1) * line_height - sizes[i][1] - 1
        cv2.putText(bgr, line, (pad, baseline_y), font, scale, (255, 255, 255), text_thickness,
                    cv2.LINE_AA)
    return bgr


# ----------------------------------------------------------------------------- display


def display_available() -> bool:
    """True when a window can be shown: a display server is set and OpenCV's GUI opens a window.

    The GUI is probed in a child process: Qt aborts the whole process when the display named in
    ``DISPLAY`` cannot be reached, which no exception handler can catch.
    """
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    probe = "import cv2; cv2.namedWindow('rbsf-probe'); cv2.destroyWindow('rbsf-probe')"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def select_box(rgb: np.ndarray, window: str = "RB-SF: draw the target, Enter to confirm") -> Box:
    """Let the user draw the initial box with the mouse (OpenCV ROI selection)."""
    x, y, w, h = cv2.selectROI(window, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), showCrosshair=True)
    cv2.destroyWindow(window)
    if w <= 0 or h <= 0:
        raise VideoError("no box was drawn; draw one and press Enter, or pass --init-box x,y,w,h")
    return float(x), float(y), float(w), float(h)


class Window:
    """A live display window; ``show`` is False once the user asks to quit (q / Esc / close)."""

    def __init__(self, title: str):
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, bgr: np.ndarray) -> bool:
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        return key not in QUIT_KEYS and not closed

    def close(self) -> None:
        cv2.destroyWindow(self.title)


# ----------------------------------------------------------------------------- the loop


@dataclass
class RunResult:
    """What a tracking run did."""

    tracked: int  # frames the tracker saw (the first frame included)
    skipped: int  # frames dropped to keep up in real time
    track_fps: float  # mean speed of the tracker's update, frames per second
    loop_fps: float  # frames processed per second of wall time (read, track, draw, write)
    stopped: str  # why the run ended


class FpsMeter:
    """Frames per second over the last ``window`` durations, and overall."""

    def __init__(self, window: int = 30):
        self.recent: deque = deque(maxlen=window)
        self.total = 0.0
        self.count = 0

    def add(self, seconds: float) -> None:
        self.recent.append(seconds)
        self.total += seconds
        self.count += 1

    @property
    def current(self) -> float:
        return len(self.recent) / sum(self.recent) if self.recent and sum(self.recent) > 0 else 0.0

    @property
    def mean(self) -> float:
        return self.count / self.total if self.total > 0 else 0.0


def track_video(tracker, source: FrameSource, init_box: Box, *, name: str,
                video_out: Optional[VideoOutput] = None, box_out: Optional[BoxOutput] = None,
                window: Optional[Window] = None, realtime: bool = False,
                max_frames: Optional[int] = None, progress: bool = True) -> RunResult:
    """Track from the source's first frame, drawing, writing and showing every processed frame.

    ``tracker`` has ``init(rgb, box)`` and ``update(rgb) -> box``. With ``realtime`` the newest
    frame is always taken and late frames are skipped; the box file still gets one line per source
    frame (a skipped frame repeats the box shown at that time) while the video holds the processed
    frames. Ctrl-C, q/Esc, the end of ``max_frames`` or a broken stream stop the run; the caller
    closes the outputs.
    """
    frames = latest_frames(source) if realtime else source.frames()
    start_index = source.index
    total = source.frame_count - start_index if source.frame_count else None
    if max_frames is not None:
        total = min(total, max_frames) if total is not None else max_frames
    bar = tqdm(total=total, unit="frame", desc=name, disable=not progress, leave=False)
    meter, started = FpsMeter(), time.perf_counter()
    tracked = skipped = 0
    last_index, box = start_index - 1, tuple(init_box)
    stopped = "end of video"
    try:
        for index, rgb in frames:
            if max_frames is not None and index - start_index >= max_frames:
                gap = start_index + max_frames - 1 - last_index  # skipped just before the limit
                skipped += gap
                if box_out is not None:
                    for _ in range(gap):
                        box_out.write(box)
                stopped = f"--max-frames {max_frames} reached"
                break
            tick = time.perf_counter()
            if tracked == 0:
                tracker.init(rgb, box)
            else:
                box = tuple(float(v) for v in tracker.update(rgb))
                meter.add(time.perf_counter() - tick)
            tracked += 1
            gap = index - last_index - 1
            skipped += gap
            if box_out is not None:
                for _ in range(gap + 1):
                    box_out.write(box)
            last_index = index
            bar.update(gap + 1)
            status = f"frame {index}" + (f"  skipped {skipped}" if realtime else "")
            bgr = draw_overlay(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), box,
                               [f"{name}  " + (f"{meter.current:.1f} fps" if meter.count
                                               else "init"), status])
            if video_out is not None:
                video_out.write(bgr)
            if window is not None and not window.show(bgr):
                stopped = "stopped by the user"
                break
        else:
            if source.broken:
                stopped = f"stream ended early after frame {last_index} (broken or truncated)"
    except KeyboardInterrupt:
        stopped = "interrupted (Ctrl-C)"
    finally:
        frames.close()
        bar.close()
    elapsed = time.perf_counter() - started
    return RunResult(tracked, skipped, meter.mean, tracked / elapsed if elapsed > 0 else 0.0,
                     stopped)
