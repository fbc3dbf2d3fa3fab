"""benchmarks/peers.py: bad input is one error line (exit 2) before anything heavy loads, and
the report's markdown names every tracker (the benchmark itself runs outside the tests)."""
import subprocess
import sys
from pathlib import Path

from experiments.peers import format_markdown, label

ROOT = Path(__file__).resolve().parents[1]


def _tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_bad_input_is_one_error_line(tmp_path):
    for args, word in ((("--frames", 1), "--frames"), (("--isa", "SSE2"), "--isa"),
                       (("--fp-weights", tmp_path / "none.pt"), "none.pt"),
                       (("--trackers", "ov-int8,bogus"), "--trackers")):
        done = _tool(*args)
        assert done.returncode == 2 and word in done.stderr
        assert done.stderr.strip().splitlines() == [done.stderr.strip()]
        assert done.stderr.startswith("error:")


def test_markdown_has_a_row_per_tracker():
    row = {"fps": 10.0, "backbone_ms": 5.0, "mean_iou": 0.5, "success_auc": 0.4,
           "fps_vs_torch_fp32": 2.0, "fps_vs_ov_int8": 1.5, "backbone_vs_ov_int8": 1.2}
    report = {"frames": 3, "sequence": "S", "rounds": 1, "threads": 2,
              "engines": {"caps": {"ONEDNN_MAX_CPU_ISA": "AVX2", "RBSF_MAX_ISA": "avx2"},
                          "rbsf_isas": ["scalar", "avx2"]},
              "trackers": {"ov-int8": row, "packed-int8": row}, "file_bytes": {"x": 1}}
    text = format_markdown(report)
    assert label("ov-int8") in text and label("packed-int8") in text and "AVX2" in text
