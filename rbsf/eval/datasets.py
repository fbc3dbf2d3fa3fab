"""Which benchmark, where its root is, which sequences it should hold and which are missing.

Roots default to ``data/GOT-10k``, ``data/OTB``, ``data/UAV123`` (environment variables
``RBSF_GOT10K``, ``RBSF_OTB``, ``RBSF_UAV123`` override them); ``custom`` is any folder of
OTB-layout sequences, by default the shipped sample ``data/sample/otb``. Expected sequence lists
come from the got10k toolkit (OTB versions from ``got10k.datasets.OTB``'s class attributes,
UAV123 from its ``uav123.json``) or from GOT-10k's ``list.txt``. Nothing is ever downloaded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import got10k.datasets
from got10k.datasets import OTB

from rbsf.data import default_root
from rbsf.eval.runner import EvalError


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: report name, on-disk layout, default root and scoring protocol."""

    name: str
    layout: str            # "got10k" | "otb" | "uav123"
    env: Optional[str]     # environment variable that overrides the default root
    otb_version: Optional[object] = None

    @property
    def protocol(self) -> str:
        return "got10k" if self.layout == "got10k" else "otb"


BENCHMARKS = {
    "GOT10k": Benchmark("GOT-10k", "got10k", "RBSF_GOT10K"),
    "OTB2013": Benchmark("OTB2013", "otb", "RBSF_OTB", 2013),
    "OTB50": Benchmark("OTB50", "otb", "RBSF_OTB", "tb50"),
    "OTB100": Benchmark("OTB100", "otb", "RBSF_OTB", "tb100"),
    "UAV123": Benchmark("UAV123", "uav123", "RBSF_UAV123"),
    "custom": Benchmark("custom", "otb", None),
}
SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "data" / "sample" / "otb"


def resolve_root(benchmark: Benchmark, root: Optional[str] = None) -> Path:
    """``root``, else the shipped sample (custom) or the data package's default root (its
    environment variable, else ``data/<dataset>``)."""
    if root:
        return Path(root)
    if benchmark.name == "custom":
        return SAMPLE_ROOT
    return default_root(benchmark.layout)


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
    if benchmark.layout == "got10k":
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


def select_sequences(benchmark: Benchmark, root: Path, subset: Optional[str],
                     wanted: Optional[Sequence[str]] = None, allow_partial: bool = False
                     ) -> Tuple[List[str], List[str]]:
    """(names to evaluate, missing names); ``EvalError`` listing the missing ones unless allowed."""
    check_root(benchmark, root, subset)
    expected, present = expected_and_present(benchmark, root, subset)
    if not expected:
        raise EvalError(f"no sequences found under {root}: a custom root holds OTB-layout "
                        f"folders <Seq>/img/*.jpg + <Seq>/groundtruth_rect.txt")
    if wanted:
        unknown = [n for n in wanted if n not in expected]
        if unknown:
            raise EvalError(f"{benchmark.name} has no sequence(s) {', '.join(unknown)}; "
                            f"check the names given to --sequences")
        expected = [n for n in expected if n in wanted]
        present = [n for n in present if n in wanted]
    missing = [n for n in expected if n not in present]
    if missing and not allow_partial:
        shown = ", ".join(missing[:20]) + (f" ... ({len(missing)} in all)" if len(missing) > 20 else "")
        raise EvalError(f"{len(missing)} of {len(expected)} {benchmark.name} sequences are missing "
                        f"under {root}: {shown}. Copy them there (nothing is downloaded), "
                        f"restrict with --sequences, or pass --allow-partial"
                        + (" (a custom root's sequence is missing when its img/ folder has no "
                           "groundtruth_rect.txt beside it)" if benchmark.name == "custom" else ""))
    if not present:
        raise EvalError(f"none of the {benchmark.name} sequences is present under {root}")
    return present, missing
