"""Experiment drivers built on the rbsf library and the tracker registry: the small-scale
reproduction of the paper's comparison (``reproduce``), the tracker speed benchmark
(``speed``), the study of the packed engine's 8-bit conv1 (``conv1_accuracy``), the tuning of
the tracker settings (``tune_tracker``), the pair scores of trained nets on any sequences
(``score_pairs``) and the shipping of trained weights (``ship_trained``). Tools and
benchmarks wrap them; the library never imports them."""
import sys
from typing import Callable


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
