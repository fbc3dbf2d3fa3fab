"""Speed benchmark of the full-precision, float-emulated binary and packed SiamFC trackers.

Everything is measured in one process, side by side and interleaved (round r runs every model
once), and the best round of each model is kept, so load from other processes on a shared
machine hurts all models alike and ratios stay meaningful.
"""
from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from rbsf.checkpoint import load_model, model_payload
from rbsf.deploy.packed import CONV1_MODES, PackedSiamFC, pack_model, save_packed
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from trackers.siamfc import SiamFCTracker

LABELS = {"fp": "full precision", "binary": "binary, float-emulated", "packed": "binary, packed",
          "packed-int8": "packed, int8 conv1"}


def panned_frames(image: np.ndarray, count: int, size: Tuple[int, int] = (640, 480),
                  step: Tuple[int, int] = (3, 2)) -> List[np.ndarray]:
    """``count`` RGB frames of ``size`` cut from ``image`` by a window moving ``step`` px/frame."""
    w, h = size
    reps = (-(-(h + step[1] * count) // image.shape[0]),
            -(-(w + step[0] * count) // image.shape[1]))
    canvas = np.tile(image, reps + (1,))
    return [np.ascontiguousarray(canvas[step[1] * f:step[1] * f + h, step[0] * f:step[0] * f + w])
            for f in range(count)]


def video_frames(path: Path, count: int) -> List[np.ndarray]:
    """The first ``count`` frames of a video file, RGB."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise ValueError(f"cannot read frames from {path}; give a readable video file")
    return frames


def packed_name(conv1_mode: str) -> str:
    """Model name of the packed model with conv1 in ``conv1_mode``: packed, packed-int8."""
    return "packed" if conv1_mode == "fp32" else f"packed-{conv1_mode}"


def build_models(fp_path: Optional[Path] = None, binary_path: Optional[Path] = None,
                 width: float = 1.0, conv1_modes: Sequence[str] = ("fp32",)
                 ) -> Dict[str, torch.nn.Module]:
    """fp, float-emulated binary and one packed model per conv1 mode (see
    :func:`packed_name`); random models of ``width`` without weights."""
    fp = load_model(fp_path) if fp_path else SiamFCNet("fp", width=width).eval()
    binary = load_model(binary_path) if binary_path else SiamFCNet("rbconv", width=width).eval()
    if isinstance(binary, PackedSiamFC) or binary.kind == "fp":
        raise ValueError(f"{binary_path} must be a binary (xnor / rbconv) checkpoint, not packed "
                         f"or full precision")
    models = {"fp": fp, "binary": binary}
    for mode in conv1_modes:
        models[packed_name(mode)] = pack_model(binary)
        models[packed_name(mode)].conv1_mode = mode
    return models


def file_sizes(models: Dict[str, torch.nn.Module]) -> Dict[str, int]:
    """Bytes of each model's file (training-free payload for fp / binary, packed file)."""
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in models.items():
            path = Path(tmp) / f"{name}.pt"
            if isinstance(net, PackedSiamFC):
                save_packed(net, path)
            else:
                save_atomic(model_payload(net), path)
            sizes[name] = path.stat().st_size
    return sizes


def track_seconds(net, frames: Sequence[np.ndarray], box: Sequence[float]) -> float:
    """Seconds spent in ``update`` over ``frames[1:]`` after ``init`` on ``frames[0]``."""
    tracker = SiamFCTracker(net)
    tracker.init(frames[0], box)
    start = time.perf_counter()
    for frame in frames[1:]:
        tracker.update(frame)
    return time.perf_counter() - start


def _timed_stages(net, x: torch.Tensor) -> Dict[str, float]:
    """Seconds per backbone stage (conv1..conv5 blocks) on the batch ``x``."""
    times = {}
    with torch.no_grad():
        if isinstance(net, PackedSiamFC):
            start = time.perf_counter()
            for name, _, _ in net.stages(x):
                now = time.perf_counter()
                times[name] = now - start
                start = now
        else:
            for name in net.backbone.SPEC:
                start = time.perf_counter()
                x = getattr(net.backbone, name)(x)
                times[name] = time.perf_counter() - start
    return times


def best_of(rounds: int, models: Dict[str, torch.nn.Module],
            measure: Callable[[torch.nn.Module], object],
            progress: Callable = lambda it: it) -> Dict[str, list]:
    """Results of ``measure`` for every model, ``rounds`` interleaved rounds (after a warm-up)."""
    for net in models.values():
        measure(net)
    results: Dict[str, list] = {name: [] for name in models}
    for _ in progress(range(rounds)):
        for name, net in models.items():
            results[name].append(measure(net))
    return results


def _peak_memory_child(queue, fp_path, binary_path, width, name, frames, box, threads) -> None:
    torch.set_num_threads(threads)
    base = vm_kib("VmRSS")
    net = build_models(fp_path, binary_path, width, CONV1_MODES)[name]
    if isinstance(net, PackedSiamFC):  # the deployed process holds the packed model only
        with tempfile.TemporaryDirectory() as tmp:
            save_packed(net, Path(tmp) / "m.pt")
            mode, net = net.conv1_mode, load_model(Path(tmp) / "m.pt")
            net.conv1_mode = mode
    track_seconds(net, frames, box)
    queue.put((base, vm_kib("VmHWM")))


def vm_kib(key: str) -> int:
    """A memory figure of this process from /proc/self/status (KiB), e.g. VmRSS, VmHWM."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory(name: str, frames, box, threads: int, fp_path=None, binary_path=None,
                width: float = 1.0) -> Dict[str, float]:
    """Peak RSS (MiB) of a fresh process that builds model ``name`` and tracks ``frames``,
    and its growth over the same process right after importing torch."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_peak_memory_child,
                            args=(queue, fp_path, binary_path, width, name, frames, box, threads))
    child.start()
    base, peak = queue.get()
    child.join()
    return {"peak_mib": peak / 1024, "growth_mib": (peak - base) / 1024}


def run(frames: Sequence[np.ndarray], box: Sequence[float], rounds: int = 3, threads: int = 2,
        fp_path: Optional[Path] = None, binary_path: Optional[Path] = None,
        memory: bool = True, width: float = 1.0, conv1_modes: Sequence[str] = CONV1_MODES,
        progress: Callable = lambda it, **_: it) -> Dict[str, object]:
    """The whole benchmark; see ``tools/bench.py`` for what is reported."""
    torch.set_num_threads(threads)
    models = build_models(fp_path, binary_path, width, conv1_modes)
    frames = list(frames)
    report: Dict[str, object] = {"threads": threads, "frames": len(frames), "rounds": rounds,
                                 "width": None if fp_path else width,
                                 "engine": engine_info(models[packed_name(conv1_modes[0])])}
    report["file_bytes"] = file_sizes(models)

    seconds = best_of(rounds, models, lambda net: track_seconds(net, frames, box),
                      lambda it: progress(it, desc="tracker rounds"))
    report["tracker_fps"] = {n: (len(frames) - 1) / min(s) for n, s in seconds.items()}

    x = torch.rand(3, 3, 255, 255, generator=torch.Generator().manual_seed(0)) * 255
    stages = best_of(rounds, models, lambda net: _timed_stages(net, x),
                     lambda it: progress(it, desc="backbone rounds"))
    report["backbone_ms_per_image"] = {
        n: {layer: 1e3 * min(r[layer] for r in runs) / 3 for layer in runs[0]}
        for n, runs in stages.items()}
    for per_layer in report["backbone_ms_per_image"].values():
        per_layer["total"] = sum(per_layer.values())

    if memory:
        report["peak_memory"] = {n: peak_memory(n, frames[:4], box, threads, fp_path,
                                                binary_path, width) for n in models}
    fps = report["tracker_fps"]
    report["speedup_vs_fp"] = {n: fps[n] / fps["fp"] for n in models}
    return report


def engine_info(net: PackedSiamFC) -> Dict[str, object]:
    """Which backend / instruction set the packed model runs with."""
    from rbsf.deploy import native
    from rbsf.deploy.engine import default_backend
    backend = net.backend or default_backend()
    isa = (net.isa or native.best_isa()) if backend == "native" else None
    int8 = ("PyTorch" if not (isa and native.int8_supported(isa)) else
            "AVX-512 VNNI" if native.ISAS[isa] >= native.ISAS["vnni"] else "AVX2")
    return {"backend": backend, "isa": isa, "isas_available": native.supported_isas(),
            "int8_kernel": int8}


def format_report(report: Dict[str, object]) -> str:
    """Human-readable tables of :func:`run`'s report."""
    engine = report["engine"]
    lines = [f"{report['frames']} frames, best of {report['rounds']} interleaved rounds, "
             f"{report['threads']} threads; packed engine: {engine['backend']}"
             f"{' / ' + engine['isa'] if engine['isa'] else ''}"
             + (f"; int8 conv1: {engine['int8_kernel']}"
                if "packed-int8" in report["tracker_fps"] else ""), "",
             f"{'model':<26}{'tracker fps':>12}{'vs fp':>8}{'file MB':>10}"
             + (f"{'peak MiB':>10}{'growth MiB':>12}" if "peak_memory" in report else "")]
    models = list(report["tracker_fps"])
    for name in models:
        line = (f"{LABELS[name]:<26}{report['tracker_fps'][name]:>12.2f}"
                f"{report['speedup_vs_fp'][name]:>7.2f}x{report['file_bytes'][name] / 1e6:>10.3f}")
        if "peak_memory" in report:
            mem = report["peak_memory"][name]
            line += f"{mem['peak_mib']:>10.0f}{mem['growth_mib']:>12.0f}"
        lines.append(line)
    per = report["backbone_ms_per_image"]
    layers = list(per["fp"])
    lines += ["", "backbone ms per 255x255 search image (batch of 3):",
              f"{'layer':<10}" + "".join(f"{LABELS[n]:>26}" for n in models)]
    for layer in layers:
        lines.append(f"{layer:<10}" + "".join(f"{per[n][layer]:>26.2f}" for n in models))
    return "\n".join(lines)
