"""The packed RB-SF tracker against the full-precision SiamFC deployed the way users would.

Every tracker is the project's own :class:`trackers.siamfc.SiamFCTracker` (same crops,
correlation head, x16 bicubic upsampling and post-processing) on the same frames; only the
backbone differs:

* ``torch-fp32``: the full-precision SiamFC in PyTorch (the tracker as shipped);
* ``ort-fp32`` / ``ort-int8``: its backbone exported to ONNX and run by onnxruntime, int8 being a
  static QDQ quantization (per-channel int8 weights, uint8 activations) calibrated on real
  frames of another video;
* ``ov-fp32`` / ``ov-bf16`` / ``ov-int8``: OpenVINO's CPU plugin on the same ONNX files
  (bf16: the fp32 model with ``INFERENCE_PRECISION_HINT=bf16``; int8: the QDQ model);
* ``packed-<mode>``: the packed 1-bit RB-SF in each conv1 mode.

Timing: interleaved rounds (each round tracks the frames once with every tracker, in a rotated
order), medians over rounds, so load from other processes hits every tracker alike. The
optional dependencies (``requirements-bench.txt``) are imported only by the functions that need
them. Instruction-set caps are environment
variables read when torch, onnxruntime, OpenVINO and our engine load (``benchmarks/peers.py``).
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from experiments.speed import vm_kib
from rbsf.checkpoint import load_model
from rbsf.crops import crop_and_resize
from rbsf.data.sequences import load_sequences
from rbsf.deploy.packed import CONV1_MODES, PackedSiamFC
from rbsf.eval.metrics import iou, otb_sequence
from rbsf.files import atomic_open
from trackers.siamfc import SiamFCTracker

PEERS = ("torch-fp32", "ort-fp32", "ort-int8", "ov-fp32", "ov-bf16", "ov-int8")
BASELINE, RIVAL = "torch-fp32", "ov-int8"
CALIBRATION_CROPS = 32


def packed_names(modes: Sequence[str] = CONV1_MODES) -> List[str]:
    return [f"packed-{mode}" for mode in modes]


# ---- backbones of the peers -----------------------------------------------------------------

def export_onnx(net: torch.nn.Module, path: Path) -> None:
    """The full-precision backbone as ONNX (torch.export; batch, height and width dynamic),
    written atomically once onnxruntime reproduces PyTorch's embedding of a test image."""
    x = torch.rand(1, 3, 255, 255, generator=torch.Generator().manual_seed(0)) * 255
    dims = {0: torch.export.Dim("n", max=64), 2: torch.export.Dim("h", min=87, max=4096),
            3: torch.export.Dim("w", min=87, max=4096)}
    tmp = path.with_name(path.name + ".part")
    torch.onnx.export(net.backbone.eval(), (x,), str(tmp), input_names=["x"], output_names=["y"],
                      dynamic_shapes={"x": dims}, dynamo=True, external_data=False)
    import onnxruntime as ort
    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()})[0]
    with torch.no_grad():
        want = net.backbone(x).numpy()
    if np.abs(got - want).max() > 1e-4 * np.abs(want).max():
        raise RuntimeError(f"the ONNX export of {path.name} does not reproduce PyTorch")
    os.replace(tmp, path)


def calibration_crops(videos: Sequence[Path], count: int = CALIBRATION_CROPS,
                      seed: int = 0) -> List[np.ndarray]:
    """``count`` tracker-like crops (255 and 127, N x 3 x H x W float32 0-255) of random
    squares in frames of ``videos``: the int8 peers' calibration data."""
    rng = np.random.default_rng(seed)
    frames = []
    for video in videos:
        capture = cv2.VideoCapture(str(video))
        ok, frame = capture.read()
        while ok:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            ok, frame = capture.read()
        capture.release()
    if not frames:
        raise ValueError(f"no frame could be read from {[str(v) for v in videos]}")
    crops = []
    for i in range(count):
        image = frames[rng.integers(len(frames))]
        h, w = image.shape[:2]
        side = rng.uniform(0.2, 0.9) * min(h, w)
        center = (rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2))
        size = 255 if i % 4 else 127
        crop = crop_and_resize(image, center, side, size)
        crops.append(np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32))
    return crops


def quantize_qdq(src: Path, dst: Path, crops: Sequence[np.ndarray]) -> None:
    """Static QDQ int8 quantization of ``src`` calibrated on ``crops`` (onnxruntime's
    quantizer: per-channel int8 weights, uint8 activations, min-max calibration)."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(crops)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {"x": item}

    tmp = dst.with_name(dst.name + ".part")
    quantize_static(str(src), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    os.replace(tmp, dst)


class OrtBackbone:
    """A SiamFC backbone run by onnxruntime (CPU), with the tracker's interface."""

    def __init__(self, path: Path, threads: int, out_scale: float):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.out_scale = out_scale

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"x": x})[0])


class OpenVinoBackbone:
    """A SiamFC backbone compiled by OpenVINO's CPU plugin, one compiled model per input shape
    (static shapes, as a deployment would use), with the tracker's interface."""

    def __init__(self, path: Path, precision: str, threads: int, out_scale: float):
        import openvino as ov
        self.core = ov.Core()
        self.path, self.precision, self.threads = path, precision, threads
        self.requests: Dict[tuple, object] = {}
        self.out_scale = out_scale

    def request(self, shape: tuple):
        if shape not in self.requests:
            model = self.core.read_model(str(self.path))
            model.reshape({"x": list(shape)})
            compiled = self.core.compile_model(model, "CPU", {
                "INFERENCE_NUM_THREADS": self.threads, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": self.precision})
            self.requests[shape] = compiled.create_infer_request()
        return self.requests[shape]

    def inference_precision(self) -> str:
        """The precision OpenVINO actually runs (bf16 falls back to f32 without hardware)."""
        request = self.request((3, 3, 255, 255))
        return str(request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT"))

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        request = self.request(x.shape)
        request.infer({0: x})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())


class TimedBackbone:
    """Wraps a network: seconds of every backbone call on a batch of search images."""

    def __init__(self, net):
        self.net, self.out_scale, self.seconds = net, net.out_scale, []

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        y = self.net.backbone(x)
        if x.shape[0] > 1:
            self.seconds.append(time.perf_counter() - start)
        return y


# ---- building every tracker's network --------------------------------------------------------

def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def peer_files(fp_weights: Path, cache: Path, videos: Sequence[Path]) -> Dict[str, Path]:
    """The fp32 and int8 ONNX files of ``fp_weights`` (made once, kept in ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"siamfc-{_digest(fp_weights)}"
    fp32, int8 = cache / f"{stem}-fp32.onnx", cache / f"{stem}-int8.onnx"
    if not fp32.is_file():
        export_onnx(load_model(fp_weights), fp32)
    if not int8.is_file():
        quantize_qdq(fp32, int8, calibration_crops(videos))
    return {"fp32": fp32, "int8": int8}


def build_net(name: str, fp_weights: Path, packed_weights: Path, files: Dict[str, Path],
              threads: int):
    """The network (anything with ``backbone`` and ``out_scale``) of tracker ``name``."""
    if name == "torch-fp32":
        return load_model(fp_weights)
    if name.startswith("packed-"):
        net = load_model(packed_weights)
        if not isinstance(net, PackedSiamFC):
            raise ValueError(f"{packed_weights} is not a packed model; export one with "
                             f"tools/export.py")
        net.conv1_mode = name[len("packed-"):]
        net.threads = threads
        return net
    out_scale = load_model(fp_weights).out_scale
    engine, precision = name.split("-")
    path = files["int8" if precision == "int8" else "fp32"]
    if engine == "ort":
        return OrtBackbone(path, threads, out_scale)
    return OpenVinoBackbone(path, "bf16" if precision == "bf16" else "f32", threads, out_scale)


# ---- measuring --------------------------------------------------------------------------------

def read_frames(root: Path, sequence: Optional[str], count: int
                ) -> Tuple[str, List[np.ndarray], np.ndarray]:
    """(name, the first ``count`` RGB frames, their ground-truth boxes) of one annotated
    sequence under ``root`` (any layout ``load_sequences`` reads; default: its first)."""
    sequences = load_sequences(str(root), names=None if sequence is None else [sequence])
    if not sequences:
        raise ValueError(f"no sequence {sequence!r} under {root}")
    seq = sequences[0]
    frames = [cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB) for path in seq.frames[:count]]
    return seq.name, frames, np.asarray(seq.boxes[:len(frames)], dtype=np.float64)


def track(net, frames: Sequence[np.ndarray], box: np.ndarray) -> Tuple[np.ndarray, float]:
    """(boxes of every frame, seconds of all ``update`` calls) of one tracking run."""
    tracker = SiamFCTracker(net)
    tracker.init(frames[0], box)
    boxes = [np.asarray(box, dtype=np.float64)]
    start = time.perf_counter()
    for frame in frames[1:]:
        boxes.append(tracker.update(frame))
    return np.array(boxes), time.perf_counter() - start


def measure(nets: Dict[str, object], frames: Sequence[np.ndarray], gt: np.ndarray, rounds: int,
            progress: Callable = lambda it: it) -> Dict[str, Dict[str, object]]:
    """Interleaved rounds (after one warm-up run each): per tracker the median fps, median
    backbone ms per frame (3 search images), the boxes and their IoU with ``gt``."""
    timed = {name: TimedBackbone(net) for name, net in nets.items()}
    boxes = {name: track(net, frames[:3], gt[0])[0] for name, net in timed.items()}
    fps: Dict[str, list] = {name: [] for name in nets}
    backbone: Dict[str, list] = {name: [] for name in nets}
    names = list(nets)
    for r in progress(range(rounds)):
        for name in names[r % len(names):] + names[:r % len(names)]:
            timed[name].seconds = []
            boxes[name], seconds = track(timed[name], frames, gt[0])
            fps[name].append((len(frames) - 1) / seconds)
            backbone[name].append(1e3 * float(np.median(timed[name].seconds)))
    results = {}
    for name in nets:
        scores = otb_sequence(boxes[name], gt)
        results[name] = {"fps": float(np.median(fps[name])), "fps_rounds": fps[name],
                         "backbone_ms": float(np.median(backbone[name])),
                         "mean_iou": float(iou(boxes[name][1:], gt[1:]).mean()),
                         "success_auc": scores["success_auc"],
                         "precision_20": scores["precision_20"], "boxes": boxes[name].tolist()}
    return results


def _memory_child(queue, name, fp_weights, packed_weights, files, threads, frames, box) -> None:
    torch.set_num_threads(threads)
    base = vm_kib("VmRSS")
    track(build_net(name, fp_weights, packed_weights, files, threads), frames, box)
    queue.put((base, vm_kib("VmHWM")))


def peak_memory(name: str, fp_weights: Path, packed_weights: Path, files: Dict[str, Path],
                threads: int, frames: Sequence[np.ndarray], box: np.ndarray) -> Dict[str, float]:
    """Peak RSS (MiB) of a fresh process that loads tracker ``name`` and tracks ``frames``, and
    its growth over that process's RSS before loading (Python, torch and numpy imported)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_memory_child, args=(queue, name, fp_weights, packed_weights,
                                                        files, threads, list(frames), box))
    child.start()
    base, peak = queue.get()
    child.join()
    return {"peak_mib": peak / 1024, "growth_mib": (peak - base) / 1024}


def model_files(fp_weights: Path, packed_weights: Path, files: Dict[str, Path]) -> Dict[str, int]:
    """Bytes of each deployed model file (the OpenVINO IR of the int8 model included)."""
    import openvino as ov
    ir = files["int8"].with_suffix(".xml")
    if not ir.is_file():
        ov.save_model(ov.Core().read_model(str(files["int8"])), str(ir), compress_to_fp16=False)
    return {"siamfc.pt (PyTorch fp32)": fp_weights.stat().st_size,
            "ONNX fp32": files["fp32"].stat().st_size,
            "ONNX int8 QDQ": files["int8"].stat().st_size,
            "OpenVINO IR int8 (.xml + .bin)": (ir.stat().st_size
                                               + ir.with_suffix(".bin").stat().st_size),
            "rbsf.packed (RB-SF packed)": packed_weights.stat().st_size}


def engine_facts(nets: Dict[str, object]) -> Dict[str, object]:
    """What each side ran with: our instruction set and kernels, OpenVINO's precisions, the
    caps in force."""
    from rbsf.deploy import native
    facts: Dict[str, object] = {
        "caps": {k: os.environ.get(k) for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                                                "RBSF_MAX_ISA")},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "rbsf_isas": native.supported_isas()}
    facts["openvino_precision"] = {name: net.inference_precision() for name, net in nets.items()
                                   if isinstance(net, OpenVinoBackbone)}
    return facts


def run(fp_weights: Path, packed_weights: Path, root: Path, sequence: Optional[str],
        frame_count: int, rounds: int, threads: int, cache: Path, videos: Sequence[Path],
        names: Sequence[str], memory: bool = True,
        progress: Callable = lambda it: it) -> Dict[str, object]:
    """The whole benchmark (see the module doc); a JSON-able report."""
    torch.set_num_threads(threads)
    seq_name, frames, gt = read_frames(root, sequence, frame_count)
    files = peer_files(fp_weights, cache, videos)
    nets, unavailable = {}, {}
    for name in names:
        try:
            nets[name] = build_net(name, fp_weights, packed_weights, files, threads)
            if isinstance(nets[name], OpenVinoBackbone):  # compile now: a cap may refuse it
                nets[name].backbone(torch.zeros(1, 3, 127, 127))
        except RuntimeError as exc:  # e.g. OpenVINO bf16 under an AVX2 cap
            nets.pop(name, None)
            unavailable[name] = str(exc).strip().splitlines()[-1]
    names = list(nets)
    report: Dict[str, object] = {"sequence": seq_name, "frames": len(frames), "rounds": rounds,
                                 "threads": threads, "engines": engine_facts(nets),
                                 "unavailable": unavailable}
    results = measure(nets, frames, gt, rounds, progress)
    for name, res in results.items():
        if BASELINE in results:
            res["fps_vs_torch_fp32"] = res["fps"] / results[BASELINE]["fps"]
        if RIVAL in results:
            res["fps_vs_ov_int8"] = res["fps"] / results[RIVAL]["fps"]
            res["backbone_vs_ov_int8"] = results[RIVAL]["backbone_ms"] / res["backbone_ms"]
    report["trackers"] = results
    report["file_bytes"] = model_files(fp_weights, packed_weights, files)
    if memory:
        report["peak_memory"] = {name: peak_memory(name, fp_weights, packed_weights, files,
                                                   threads, frames[:5], gt[0])
                                 for name in names}
    return report


LABELS = {"torch-fp32": "SiamFC, PyTorch fp32", "ort-fp32": "SiamFC, onnxruntime fp32",
          "ort-int8": "SiamFC, onnxruntime int8", "ov-fp32": "SiamFC, OpenVINO fp32",
          "ov-bf16": "SiamFC, OpenVINO bf16", "ov-int8": "SiamFC, OpenVINO int8"}


def label(name: str) -> str:
    return LABELS.get(name) or f"RB-SF packed, conv1 {name[len('packed-'):]}"


def format_markdown(report: Dict[str, object]) -> str:
    """The report as markdown tables."""
    caps = report["engines"]["caps"]
    cap = caps.get("ONEDNN_MAX_CPU_ISA") or "none (native)"
    lines = [f"{report['frames']} frames of {report['sequence']}, {report['rounds']} interleaved "
             f"rounds (medians), {report['threads']} threads; ISA cap: {cap} (RB-SF engine: "
             f"{caps.get('RBSF_MAX_ISA') or 'none'}, its instruction sets "
             f"{', '.join(report['engines']['rbsf_isas'])})", "",
             "| tracker | fps | backbone ms / frame | vs PyTorch fp32 | vs OpenVINO int8 "
             "| backbone vs OV int8 | mean IoU | success AUC |",
             "|---|---|---|---|---|---|---|---|"]
    for name, res in report["trackers"].items():
        lines.append(f"| {label(name)} | {res['fps']:.1f} | {res['backbone_ms']:.1f} | "
                     f"{res.get('fps_vs_torch_fp32', float('nan')):.2f}x | "
                     f"{res.get('fps_vs_ov_int8', float('nan')):.2f}x | "
                     f"{res.get('backbone_vs_ov_int8', float('nan')):.2f}x | "
                     f"{res['mean_iou']:.3f} | {res['success_auc']:.3f} |")
    lines += [f"| {label(name)} | could not run: {why} |||||||"
              for name, why in report.get("unavailable", {}).items()]
    lines += ["", "| model file | bytes |", "|---|---|"]
    lines += [f"| {name} | {size:,} |" for name, size in report["file_bytes"].items()]
    if "peak_memory" in report:
        lines += ["", "| tracker process | peak RSS MiB | growth MiB |", "|---|---|---|"]
        lines += [f"| {label(name)} | {m['peak_mib']:.0f} | {m['growth_mib']:.0f} |"
                  for name, m in report["peak_memory"].items()]
    return "\n".join(lines)


def save(report: Dict[str, object], out: Path) -> Tuple[Path, Path]:
    """Write ``peers.json`` and ``peers.md`` into ``out`` (atomically)."""
    import json
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "peers.json", "w") as f:
        json.dump(report, f, indent=1)
    with atomic_open(out / "peers.md", "w") as f:
        f.write(format_markdown(report) + "\n")
    return out / "peers.json", out / "peers.md"
