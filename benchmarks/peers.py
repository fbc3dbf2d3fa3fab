"""The packed RB-SF tracker against the full-precision SiamFC on PyTorch, onnxruntime and
OpenVINO (fp32 / bf16 / int8), all in the project's tracker on the same frames, in one run.

    pip install -r requirements-bench.txt          # openvino, onnxruntime, onnx (once)
    python benchmarks/peers.py                     # shipped sample sequence, native ISA
    python benchmarks/peers.py --isa AVX2          # both sides capped to AVX2 (a laptop)
    python benchmarks/peers.py --isa AVX512_CORE_VNNI --out runs/peers-vnni

Goals (issue 14): packed RB-SF tracker fps >= 1.5x the OpenVINO-int8 SiamFC tracker's at every
ISA, and >= 8x the PyTorch fp32 tracker's. ``--isa`` sets ONEDNN_MAX_CPU_ISA (OpenVINO and
PyTorch's oneDNN), ATEN_CPU_CAPABILITY (PyTorch's own kernels) and RBSF_MAX_ISA (our engine)
before anything is imported; onnxruntime has no such cap (its rows stay native). Writes
peers.json and peers.md into --out; the ONNX files are made once into --cache.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tools.cli import ArgumentParser, choose, fail, run_tool

REPO = Path(__file__).resolve().parents[1]
FPS_GOAL_RIVAL, FPS_GOAL_BASELINE = 1.5, 8.0
# --isa (oneDNN's names) -> environment of the capped run: oneDNN (OpenVINO, PyTorch's convs),
# PyTorch's own vector kernels, and our engine. onnxruntime's MLAS has no cap.
ISA_CAPS = {
    "AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
             "RBSF_MAX_ISA": "avx2"},
    "AVX512_CORE": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512",
                    "RBSF_MAX_ISA": "avx512"},
    "AVX512_CORE_VNNI": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI",
                         "ATEN_CPU_CAPABILITY": "avx512", "RBSF_MAX_ISA": "vnni"},
    "AVX512_CORE_BF16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16",
                         "ATEN_CPU_CAPABILITY": "avx512", "RBSF_MAX_ISA": "bf16"},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()),
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--isa", choices=("native",) + tuple(ISA_CAPS), default="native",
                        help="cap every engine to this instruction set (oneDNN's names)")
    parser.add_argument("--root", type=Path, default=REPO / "data" / "sample" / "otb",
                        help="dataset root (any layout tools/eval.py reads) with the frames")
    parser.add_argument("--sequence", default="",
                        help="sequence name under --root ('': the first)")
    parser.add_argument("--frames", type=int, default=60, help="frames per tracking run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every engine")
    parser.add_argument("--fp-weights", type=Path, default=REPO / "data/weights/siamfc.pt")
    parser.add_argument("--packed-weights", type=Path, default=REPO / "data/weights/rbsf.packed")
    parser.add_argument("--trackers", default="",
                        help="comma-separated subset of trackers ('': all)")
    parser.add_argument("--calibration", type=Path, nargs="+",
                        default=sorted((REPO.parent / "shared" / "data" / "videos").glob("*.avi"))
                        or [REPO / "data" / "sample" / "clip.mp4"],
                        help="videos whose frames calibrate the int8 peers")
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "peers" / "models")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "peers")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory runs (a fresh process per tracker)")
    args = parser.parse_args(argv)
    if args.frames < 3 or args.rounds < 1 or args.threads < 1:
        parser.error("--frames must be >= 3, --rounds and --threads >= 1")
    for path in (args.fp_weights, args.packed_weights, *args.calibration):
        if not path.is_file():
            parser.error(f"{path} does not exist")
    if not args.root.is_dir():
        parser.error(f"--root {args.root} is not a folder")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.isa != "native":
        os.environ.update(ISA_CAPS[args.isa])
    # torch, onnxruntime and OpenVINO read the caps when they load: import them only now
    from experiments.peers import PEERS, format_markdown, packed_names, run, save
    from rbsf.deploy.packed import CONV1_MODES
    from tqdm import tqdm
    names = list(PEERS) + packed_names(CONV1_MODES)
    if args.trackers:
        names = choose(args.trackers, names, "--trackers")
    try:
        import onnxruntime  # noqa: F401
        import openvino  # noqa: F401
    except ImportError as exc:
        return fail(f"{exc.name} is missing; pip install -r requirements-bench.txt")
    report = run(args.fp_weights, args.packed_weights, args.root, args.sequence or None,
                 args.frames, args.rounds, args.threads, args.cache, args.calibration, names,
                 memory=not args.no_memory,
                 progress=lambda it: tqdm(it, desc="rounds", file=sys.stderr, leave=False))
    report["isa"] = args.isa
    json_path, md_path = save(report, args.out)
    print(format_markdown(report), "\n")
    trackers = report["trackers"]
    for name in (n for n in names if n.startswith("packed-")):
        res = trackers[name]
        for key, goal, rival in (("fps_vs_ov_int8", FPS_GOAL_RIVAL, "OpenVINO int8"),
                                 ("fps_vs_torch_fp32", FPS_GOAL_BASELINE, "PyTorch fp32")):
            if key in res:
                print(f"{name} / {rival} tracker fps: {res[key]:.2f}x (goal >= {goal:g}x): "
                      f"{'met' if res[key] >= goal else 'MISSED'}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
