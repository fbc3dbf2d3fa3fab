"""The one registry of trackers: the names the tools take, and what each name stands for.

========== ==================== ============== ============== ======== =========== ======
name       report name          shipped file   training stage net kind packed file conv1
========== ==================== ============== ============== ======== =========== ======
siamfc     SiamFC               siamfc.pt      teacher        fp       no          fp32
xnor       XNOR-SF              xnor.pt        xnor           xnor     no          fp32
rbsf       RB-SF                rbsf.pt        rbsf           rbconv   no          fp32
packed     RB-SF packed         rbsf.packed    (export)       rbconv   yes         fp32
packed-int8 RB-SF packed int8   rbsf.packed    (export)       rbconv   yes         int8
========== ==================== ============== ============== ======== =========== ======

Tools wire names to trackers here and nowhere else; the library (``rbsf``) takes tracker
objects, or the picklable :class:`TrackerFactory` recipes worker processes build them from.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

from rbsf.checkpoint import load_checkpoint, load_model, unfinished_note
from rbsf.deploy.packed import PackedSiamFC
from rbsf.errors import RBSFError
from rbsf.models.siamfc import MODEL_NAMES
from trackers.siamfc import (PER_TRACKER, ParamsError, SiamFCTracker, TrackerParams,
                             changed_params, load_params)

REPO = Path(__file__).resolve().parents[1]
SHIPPED_WEIGHTS = REPO / "data" / "weights"
PARAMS_FILE = "tracking.json"   # tracker settings beside the weights they were tuned for
REFERENCE = "reference"         # --params value: SiamFC's reference settings
PARAMS_HELP = ("tracker settings JSON (experiments/tune_tracker.py writes one; its 'per_tracker' "
               "object gives a tracker settings of its own, e.g. {\"per_tracker\": {\"siamfc\": "
               "{\"motion_lr\": 0}}}), or 'reference' for SiamFC's values (default: tracking.json "
               "beside the weights when there is one, else the reference values)")


class TrackerError(RBSFError):
    """An unknown tracker name, or weights that are missing or of another kind of model."""


@dataclass(frozen=True)
class TrackerEntry:
    """What one tracker name stands for."""

    report_name: str
    weights_file: str        # the shipped file in data/weights
    stage: Optional[str]     # the training stage folder that writes its weights, if any
    kind: str                # conv kind of the network's binary layers (fp, xnor, rbconv)
    packed: bool = False     # the bit-packed engine (tools/export.py) instead of PyTorch
    conv1_mode: str = "fp32"  # packed engine: exact fp32 or the 8-bit first conv

    def describe(self) -> str:
        return f"{'packed ' if self.packed else ''}{MODEL_NAMES[self.kind]} model"


TRACKERS: Dict[str, TrackerEntry] = {
    "siamfc": TrackerEntry("SiamFC", "siamfc.pt", "teacher", "fp"),
    "xnor": TrackerEntry("XNOR-SF", "xnor.pt", "xnor", "xnor"),
    "rbsf": TrackerEntry("RB-SF", "rbsf.pt", "rbsf", "rbconv"),
    "packed": TrackerEntry("RB-SF packed", "rbsf.packed", None, "rbconv", packed=True),
    "packed-int8": TrackerEntry("RB-SF packed int8", "rbsf.packed", None, "rbconv", packed=True,
                                conv1_mode="int8"),
}


def entry(name: str) -> TrackerEntry:
    """The registry entry of ``name``; ``TrackerError`` listing the names for an unknown one."""
    if name not in TRACKERS:
        raise TrackerError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
    return TRACKERS[name]


def name_of_stage(stage: str) -> str:
    """The tracker whose weights the training stage ``stage`` writes (teacher -> siamfc)."""
    return next(name for name, item in TRACKERS.items() if item.stage == stage)


def parse_names(text: str) -> list:
    """Comma-separated tracker names, each checked; ``TrackerError`` when none is given."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise TrackerError(f"no tracker named in {text!r}; choose from {', '.join(TRACKERS)}")
    for name in names:
        entry(name)
    if len(set(names)) != len(names):
        raise TrackerError(f"a tracker is named twice in {text!r}")
    return names


def find_weights(name: str, weights_dir: Union[str, Path] = SHIPPED_WEIGHTS) -> Path:
    """``DIR/<shipped file>`` or, for trainable trackers, ``DIR/<stage>/last.pt`` (a training
    output folder)."""
    item = entry(name)
    candidates = [Path(weights_dir) / item.weights_file]
    if item.stage is not None:
        candidates.append(Path(weights_dir) / item.stage / "last.pt")
    for path in candidates:
        if path.is_file():
            return path
    how = "export it (tools/export.py)" if item.packed else "train it (tools/train_rbsf.py)"
    raise TrackerError(f"no weights for {name}: no file {' or '.join(map(str, candidates))}; "
                       f"{how} or pass another weights folder")


def load_net(name: str, weights: Union[str, Path]):
    """The network of tracker ``name`` from ``weights``, checked to be the kind of model the
    name stands for (so results are never filed under another model's name)."""
    item = entry(name)
    net = load_model(weights)
    packed = isinstance(net, PackedSiamFC)
    if net.kind != item.kind or packed != item.packed:
        actual = f"{'packed ' if packed else ''}{MODEL_NAMES.get(net.kind, net.kind)} model"
        fits = [n for n, e in TRACKERS.items() if e.kind == net.kind and e.packed == packed]
        raise TrackerError(f"{weights} holds a {actual}, not the {item.describe()} that tracker "
                           f"{name!r} runs; use tracker {' or '.join(map(repr, fits))} for it")
    if packed:
        net.conv1_mode = item.conv1_mode
    return net


def name_for_weights(weights: Union[str, Path]) -> str:
    """The tracker that runs the model in ``weights`` (its exact mode for a packed model)."""
    net = load_model(weights)
    packed = isinstance(net, PackedSiamFC)
    return next(n for n, e in TRACKERS.items()
                if e.kind == net.kind and e.packed == packed and e.conv1_mode == "fp32")


def unfinished(weights: Union[str, Path]) -> Optional[str]:
    """How far training got (``"unfinished rbsf training: epoch 2 of 10, step 40"``) when
    ``weights`` is a training checkpoint whose run has not finished; None otherwise."""
    return unfinished_note(load_checkpoint(weights))


@dataclass(frozen=True)
class TrackerFactory:
    """A picklable recipe for one tracker: registry name, weights, device, tracking settings
    and, optionally, the name its results are filed under (default: the registry's report
    name)."""

    name: str
    weights: str
    device: str = "cpu"
    report_name: Optional[str] = None
    params: TrackerParams = TrackerParams()

    @property
    def label(self) -> str:
        return self.report_name or entry(self.name).report_name

    def check(self) -> None:
        """Load the weights once and check them (before any long work)."""
        load_net(self.name, self.weights)

    def identity(self) -> dict:
        """What its results depend on: the tracker, its weights' digest, the settings that
        differ from the reference (``rbsf.eval.runner`` keeps results of one identity apart)."""
        digest = hashlib.sha256(Path(self.weights).read_bytes()).hexdigest()
        return {"tracker": self.name, "weights_sha256": digest,
                "settings": changed_params(self.params)}

    def __call__(self) -> SiamFCTracker:
        return SiamFCTracker(load_net(self.name, self.weights), self.label, self.params,
                             self.device)


def params_file(weights_dir: Union[str, Path], choice: Optional[str] = None) -> Optional[Path]:
    """The settings file trackers of ``weights_dir`` run with: ``choice`` (a path, or
    ``"reference"`` for none), else ``weights_dir/tracking.json`` when it exists (settings tuned
    for those weights), else none (the reference settings)."""
    if choice == REFERENCE:
        return None
    if choice is not None:
        return Path(choice)
    default = Path(weights_dir) / PARAMS_FILE
    return default if default.is_file() else None


def tracker_params(path: Optional[Path], names: Sequence[str]) -> Dict[str, TrackerParams]:
    """The settings each of the trackers ``names`` runs with, from ``path`` (what
    :func:`params_file` chose; its ``per_tracker`` names are checked to be trackers), loaded
    and checked (``ParamsError``); the reference settings for None."""
    if path is None:
        return {name: TrackerParams() for name in names}
    settings = load_params(path)
    for name in settings.own:
        if name not in TRACKERS:
            raise ParamsError(f"tracker settings {path}: {PER_TRACKER} names unknown tracker "
                              f"{name!r}; choose from {', '.join(TRACKERS)}")
    return {name: settings.for_tracker(name) for name in names}


def factories(names: Sequence[str], weights_dir: Union[str, Path] = SHIPPED_WEIGHTS,
              device: str = "cpu", params: Optional[Mapping[str, TrackerParams]] = None
              ) -> Dict[str, TrackerFactory]:
    """Checked factories of the named trackers, keyed by the name their results go under;
    ``params`` maps a tracker name to its settings (:func:`tracker_params`; default: the
    reference settings)."""
    made = {}
    for name in names:
        factory = TrackerFactory(name, str(find_weights(name, weights_dir)), device,
                                 params=(params or {}).get(name, TrackerParams()))
        factory.check()
        made[factory.label] = factory
    return made


def build_tracker(name: str, weights: Optional[Union[str, Path]] = None, device: str = "cpu",
                  params: TrackerParams = TrackerParams()) -> SiamFCTracker:
    """The tracker ``name`` with ``weights`` (default: its shipped weights)."""
    return TrackerFactory(name, str(weights or find_weights(name)), device, params=params)()
