"""Experiment drivers built on the rbsf library and the tracker registry: the small-scale
reproduction of the paper's comparison (``reproduce``), the tracker speed benchmark
(``speed``), the study of the packed engine's 8-bit conv1 (``conv1_accuracy``), the tuning of
the tracker settings (``tune_tracker``), the pair scores of trained nets on any sequences
(``score_pairs``), the size-oracle diagnosis of a tracker (``size_oracle``), the paired
per-sequence comparison of a report's trackers (``compare_trackers``), the crossing counts
(``crossing_gate``), the box sizes against the true ones (``box_sizes``), the binary weights
training changed (``sign_agreement``), the shipping of trained weights (``ship_trained``) and
the slim copy of a run that travels back from a GPU machine (``slim_run``, which
``gpu_chain.sh`` ends with).
Tools and benchmarks wrap them; the library never imports them."""
import sys
from typing import Callable, Tuple


def run_job(job: Callable[[], str]) -> int:
    """Exit code of a driver run as a command: 0 after printing what ``job`` returns, 2 after
    one ``error:`` line for the ``RBSFError`` it raises (bad input, said before long work)."""
    from rbsf.errors import RBSFError

    try:
        message = job()
    except RBSFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(message)
    return 0


def run_record_job(out, stem: str, build: Callable[[], Tuple[dict, str]]) -> int:
    """``run_job`` of a driver that prints a markdown table and, given an ``out`` folder, also
    writes it beside its JSON record (``rbsf.files.write_record`` as ``OUT/<stem>``): ``out``
    is checked writable first, then ``build`` does the work and returns (record, table)."""
    from rbsf.files import check_writable_dir, write_record

    def job() -> str:
        if out is not None:
            check_writable_dir(out, "--out")
        record, table = build()
        if out is not None:
            write_record(out, stem, record, table)
        return table
    return run_job(job)


def merge_labelled(merged: dict, label: str, items: dict, sources: str, error: type) -> None:
    """Add ``items`` (tracker name -> value) to ``merged``, each named ``LABEL: name`` when
    ``label`` (of a ``PATH=LABEL`` argument) is given; ``error`` when a name is taken
    (``sources``, e.g. "reports", says what holds them)."""
    for name, value in items.items():
        key = f"{label}: {name}" if label else name
        if key in merged:
            raise error(f"two {sources} hold a tracker {key!r}; label one of them as PATH=LABEL")
        merged[key] = value


def result_folders_parser(doc: str, root_help: str):
    """An argument parser (``doc`` its description) of ``RESULTS[=LABEL]`` result folders and
    the ``--root`` of the sequences they hold results of."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", metavar="RESULTS[=LABEL]",
                        help="result folders of the dataset, e.g. results/custom")
    parser.add_argument("--root", type=Path, required=True, help=root_help)
    return parser


def score_result_folders(specs, root, score: Callable, error: type) -> dict:
    """``score(folder, tracker)`` of every tracker with results in each ``PATH`` or
    ``PATH=LABEL`` of ``specs`` (result folders of the sequences in ``root``), named as
    ``merge_labelled`` names them; ``error`` for a folder that is missing or holds no results."""
    from pathlib import Path

    from rbsf.eval.report import trackers_in

    merged: dict = {}
    for spec in specs:
        path, _, label = spec.partition("=")
        names = trackers_in(Path(path))
        if not names:
            raise error(f"{path} holds no tracker's results; run tools/eval.py with "
                        f"--root {root} --result-dir on its parent first")
        merge_labelled(merged, label, {name: score(Path(path), name) for name in names},
                       "result folders", error)
    return merged


def add_tracker_options(parser, root_help: str) -> None:
    """``--tracker``, ``--weights-dir`` and ``--root``, named alike by every driver that tracks."""
    from pathlib import Path

    from trackers.registry import SHIPPED_WEIGHTS

    parser.add_argument("--tracker", required=True, help="registry name (packed, rbsf, siamfc...)")
    parser.add_argument("--weights-dir", type=Path, default=SHIPPED_WEIGHTS,
                        help="folder with the tracker's weights (default: data/weights)")
    parser.add_argument("--root", type=Path, required=True, help=root_help)


