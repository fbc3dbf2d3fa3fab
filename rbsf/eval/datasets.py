"""Which benchmark, where its root is, which sequences it should hold and which are missing.

Roots default to ``data/<dataset>`` (``data/GOT-10k``, ``data/OTB``, ``data/LaSOT``, ...; an
environment variable such as ``RBSF_OTB`` or ``RBSF_VOT2018`` overrides each, see
``rbsf.data.DEFAULT_ROOTS``); ``custom`` is any folder of OTB-layout sequences, by default the
shipped sample ``data/sample/otb``. Expected sequence lists come from the got10k toolkit (OTB
versions from ``got10k.datasets.OTB``'s class attributes, UAV123 from its ``uav123.json``, the
LaSOT test split from its ``lasot.json``), from the root's own list (GOT-10k's and VOT's
``list.txt``, TrackingNet's annotations) or, where neither exists (NfS, TColor128, DTB70), from
the sequence folders together with the benchmark's size, so that a root holding part of a
benchmark is said to be partial. The root is checked here, before anything reads it: nothing is
ever downloaded (the toolkit's classes would download into an incomplete root).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import got10k.datasets
from got10k.datasets import OTB

from rbsf.data import default_root
from rbsf.data.layouts import LAYOUTS
from rbsf.data.sequences import DEFAULT_ROOTS, VOT_VERSIONS
from rbsf.eval.runner import EvalError


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: report name, on-disk layout, default root and scoring protocol."""

    name: str                  # report name: results/<name>/, reports/<name>/
    layout: str                # "got10k" | "otb" | "uav123" | a key of rbsf.data.layouts.LAYOUTS
    root_key: Optional[str]    # key of rbsf.data.default_root; None: custom (--root or sample)
    protocol: str              # "got10k" | "otb" | "lasot" | "trackingnet" | "vot"
    otb_version: Optional[object] = None

    @property
    def env(self) -> Optional[str]:
        """The environment variable that overrides the default root."""
        return DEFAULT_ROOTS[self.root_key][0] if self.root_key else None

    @property
    def results(self) -> str:
        """Layout of the result files (``rbsf.eval.runner.result_paths``)."""
        return self.protocol if self.protocol in ("got10k", "vot") else "otb"

    def submission(self, subset: Optional[str]) -> bool:
        """True when the scores are the evaluation server's (GOT-10k test, TrackingNet)."""
        return self.protocol == "trackingnet" or (self.protocol == "got10k" and subset == "test")


BENCHMARKS = {
    "GOT10k": Benchmark("GOT-10k", "got10k", "got10k", "got10k"),
    "OTB2013": Benchmark("OTB2013", "otb", "otb", "otb", 2013),
    "OTB50": Benchmark("OTB50", "otb", "otb", "otb", "tb50"),
    "OTB100": Benchmark("OTB100", "otb", "otb", "otb", "tb100"),
    "UAV123": Benchmark("UAV123", "uav123", "uav123", "otb"),
    "LaSOT": Benchmark("LaSOT", "lasot", "lasot", "lasot"),
    "TrackingNet": Benchmark("TrackingNet", "trackingnet", "trackingnet", "trackingnet"),
    "NfS30": Benchmark("NfS30", "nfs30", "nfs", "otb"),
    "NfS240": Benchmark("NfS240", "nfs240", "nfs", "otb"),
    "TColor128": Benchmark("TColor128", "tcolor128", "tcolor128", "otb"),
    "DTB70": Benchmark("DTB70", "dtb70", "dtb70", "otb"),
    **{f"VOT{year}": Benchmark(f"VOT{year}", "vot", f"vot{year}", "vot") for year in VOT_VERSIONS},
    "custom": Benchmark("custom", "otb", None, "otb"),
}
SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "data" / "sample" / "otb"


def resolve_root(benchmark: Benchmark, root: Optional[str] = None) -> Path:
    """``root``, else the shipped sample (custom) or the data package's default root (its
    environment variable, else ``data/<dataset>``)."""
    if root:
        return Path(root)
    if benchmark.root_key is None:
        return SAMPLE_ROOT
    return default_root(benchmark.root_key)


def check_root(benchmark: Benchmark, root: Path, subset: Optional[str]) -> None:
    """``EvalError`` when the root does not look like the benchmark's layout at all."""
    hint = (f"pass --root or set {benchmark.env}" if benchmark.env else "pass --root")
    if not root.is_dir():
        raise EvalError(f"{benchmark.name} root {root} does not exist; {hint} "
                        f"(see data/README.md for the expected layout)")
    if benchmark.layout == "got10k" and not (root / subset / "list.txt").is_file():
        raise EvalError(f"{root} is not a GOT-10k root: {root / subset / 'list.txt'} is missing; "
                        f"{hint} (the folder that holds train/ val/ test/)")
    if benchmark.layout == "uav123" and not (root / "anno" / "UAV123").is_dir():
        raise EvalError(f"{root} is not a UAV123 root: {root / 'anno' / 'UAV123'} is missing; "
                        f"{hint} (the folder that holds anno/ and data_seq/)")
    layout = LAYOUTS.get(benchmark.layout)
    if layout is not None and not layout.is_root(root):
        raise EvalError(f"{root} is not a {layout.name} root: expected {layout.shape}; {hint} "
                        f"(see data/README.md)")


def _uav123_meta() -> dict:
    meta_file = Path(got10k.datasets.__file__).parent / "uav123.json"
    return json.loads(meta_file.read_text())["UAV123"]


def otb_version_names(version) -> List[str]:
    """Sequence names of an OTB version, from the toolkit's class attributes (no download)."""
    return list(getattr(OTB, "_OTB__version_dict")[version])


def _otb_present(root: Path, name: str) -> bool:
    folder = root / name
    return (folder / "img").is_dir() and any(folder.glob("groundtruth*.txt"))


def expected_and_present(benchmark: Benchmark, root: Path, subset: Optional[str]
                         ) -> Tuple[List[str], List[str]]:
    """(names the benchmark should hold, names present on disk), in benchmark order."""
    layout = LAYOUTS.get(benchmark.layout)
    if layout is not None:
        expected = layout.listed(root)
        present = [n for n in expected if layout.present(root, n)]
    elif benchmark.layout == "got10k":
        expected = (root / subset / "list.txt").read_text().split()
        present = [n for n in expected if (root / subset / n).is_dir()]
    elif benchmark.layout == "uav123":
        meta = _uav123_meta()
        expected = sorted(meta)
        present = [n for n in expected
                   if (root / "anno" / "UAV123" / f"{n}.txt").is_file()
                   and (root / "data_seq" / "UAV123" / meta[n]["folder_name"]).is_dir()]
    elif benchmark.otb_version is not None:
        expected = otb_version_names(benchmark.otb_version)
        present = [n for n in expected if _otb_present(root, n)]
    else:  # custom: every folder with frames is expected, so one without ground truth shows
        expected = sorted(p.name for p in root.iterdir() if (p / "img").is_dir())
        present = [n for n in expected if _otb_present(root, n)]
    return expected, present


def not_found(benchmark: Benchmark, listed: int, wanted: Optional[Sequence[str]] = None) -> int:
    """How many sequences of the full benchmark have no folder at all, where the benchmark's
    size is known but its names are not (NfS, TColor128, DTB70, TrackingNet); 0 with ``wanted``
    (a chosen subset is not partial)."""
    layout = LAYOUTS.get(benchmark.layout)
    if wanted or layout is None or layout.size is None:
        return 0
    return max(0, layout.size - listed)


def _shown(names: Sequence[str], limit: int = 20) -> str:
    return ", ".join(names[:limit]) + (f" ... ({len(names)} in all)" if len(names) > limit else "")


def _missing_message(benchmark: Benchmark, root: Path, expected: Sequence[str],
                     missing: Sequence[str], unfound: int) -> str:
    layout = LAYOUTS.get(benchmark.layout)
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {len(expected)} {benchmark.name} sequences are missing "
                     f"under {root}: {_shown(missing)}")
    if unfound:
        parts.append(f"{root} holds {len(expected)} of the {len(expected) + unfound} "
                     f"{benchmark.name} sequences ({unfound} missing)")
    hint = ""
    if benchmark.name == "custom":
        hint = (" (a custom root's sequence is missing when its img/ folder has no "
                "groundtruth_rect.txt beside it)")
    elif layout is not None and missing:
        hint = f" (a complete sequence is {layout.shape})"
    return ("; ".join(parts) + ". Copy them there (nothing is downloaded), restrict with "
            "--sequences, or pass --allow-partial" + hint)


def select_sequences(benchmark: Benchmark, root: Path, subset: Optional[str],
                     wanted: Optional[Sequence[str]] = None, allow_partial: bool = False
                     ) -> Tuple[List[str], List[str]]:
    """(names to evaluate, missing names); ``EvalError`` listing the missing ones (or, where the
    benchmark's names are unknown, saying how many are not there) unless allowed."""
    check_root(benchmark, root, subset)
    expected, present = expected_and_present(benchmark, root, subset)
    if not expected:
        layout = LAYOUTS.get(benchmark.layout)
        shape = layout.shape if layout else "OTB-layout folders <Seq>/img/*.jpg + " \
                                            "<Seq>/groundtruth_rect.txt"
        raise EvalError(f"no {benchmark.name} sequences found under {root}: expected {shape}")
    if wanted:
        unknown = [n for n in wanted if n not in expected]
        if unknown:
            raise EvalError(f"{benchmark.name} has no sequence(s) {', '.join(unknown)}; "
                            f"check the names given to --sequences")
        expected = [n for n in expected if n in wanted]
        present = [n for n in present if n in wanted]
    missing = [n for n in expected if n not in present]
    unfound = not_found(benchmark, len(expected), wanted)
    if (missing or unfound) and not allow_partial:
        raise EvalError(_missing_message(benchmark, root, expected, missing, unfound))
    if not present:
        raise EvalError(f"none of the {benchmark.name} sequences is present under {root}")
    return present, missing
