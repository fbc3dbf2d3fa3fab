"""SiamFC tracking (inference) for any network with ``backbone``, ``out_scale`` and the xcorr head.

Images: ``init`` and ``update`` take a PIL image of any mode (converted to RGB; the got10k
toolkit's ``Tracker.track`` passes these), or a numpy array that is H x W (grayscale) or
H x W x 3 **RGB** (convert OpenCV's BGR frames first) or H x W x 4 (alpha dropped).
Boxes are (x, y, w, h), (x, y) the top-left corner, in pixels.

Per frame: ``scale_num`` search crops around the last centre (three by default, at scales
``scale_step ** {-1, 0, 1}``), one backbone pass, cross-correlation with the exemplar embedding
cached at ``init`` (the packed engine's native head for every network on the CPU, when it was
compiled), response upsampled x16 (bicubic) to 272 x 272, off-centre scales penalised, a Hann
window mixed in, and the peak moved back to image coordinates. The size follows the best scale
with a learning rate. ``scale_bias`` corrects a net's preference for zoomed-in or zoomed-out
crops (0, the default: none, as in SiamFC).
With ``template_lr`` > 0 the exemplar embedding moves towards the embedding of the new box at
that rate each frame (a linear template update; 0, the default, keeps SiamFC's fixed exemplar).
With ``motion_lr`` > 0 the search is centred where a constant-velocity model predicts the
target, the velocity moving towards each frame's displacement at that rate (0, the default,
searches around the last centre, as SiamFC does).
With ``distractor_weight`` > 0 the tracker learns what it must not follow (DaSiamRPN's
distractor-aware model, Zhu et al., ECCV 2018): each frame, the other peaks of the response
within ``distractor_ratio`` of its maximum and outside the target's box are cut from the search
embedding, their mean joins a running distractor embedding at rate ``distractor_lr``, and the
search correlates with the exemplar minus ``distractor_weight`` times that embedding (one
correlation: it is linear in the kernel). 0, the default, is SiamFC's plain exemplar.
With ``scale_filter_lr`` > 0 a DSST scale filter (``trackers.scale_filter``) then measures the
size change at the new centre and sets the size, learning at that rate from each frame's box;
with it, one search crop (``scale_num`` 1) is enough for the centre.
With ``feature_filter_weight`` > 0 an online correlation filter over the search embedding
(``trackers.feature_filter``), learned at rate ``feature_filter_lr`` from every frame, adds its
response to SiamFC's at that weight (1: the two maps span the same range on the first frame):
a discriminative model of the target against its surroundings, for objects the network's
offline embedding matches poorly. 0, the default, is SiamFC's response alone.
With ``color_weight`` > 0 a colour model of the target against its surroundings
(``trackers.color_model``: Staple's per-pixel score), learned at rate ``color_lr`` from every
frame's box, scores each position of the winning scale's map by how much of a target-sized box
there has the target's colours; that score (0-1) and SiamFC's map (scaled to 0-1) are mixed at
that weight before the cosine window. 0, the default, is SiamFC's response alone.
With ``exemplar_context`` < 1 the exemplar crop's pixels outside the target's box are faded
towards the padding colour to that share of their contrast before the exemplar is embedded
(0: the box alone), so a second object beside the target weighs less in the exemplar; 1, the
default, is SiamFC's exemplar with its full context.
The centre is kept inside the image and the size within [``min_size``, image size], so a target
that leaves the frame or a box larger than the image keeps the tracker usable. With
``scale_limit`` > 0 the size also stays within [1 / ``scale_limit``, ``scale_limit``] times the
first box's (Bertinetto's SiamFC saturates its search region at 5; 0, the default, sets no such
limit, as the PyTorch reference).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from got10k.trackers import Tracker
from PIL import Image

from rbsf.crops import crop_and_resize, exemplar_crop_size, mean_color, to_rgb_array
from rbsf.deploy.engine import correlate
from rbsf.deploy.packed import PackedSiamFC
from rbsf.devices import exact_float32_on_gpu
from rbsf.errors import RBSFError
from trackers.color_model import BINS_RANGE, ColorModel
from trackers.feature_filter import FeatureFilter
from trackers.running import blend
from trackers.scale_filter import ScaleFilter


class ParamsError(RBSFError, ValueError):
    """Tracker settings that are out of range, or a settings file that cannot be read."""


@dataclass(frozen=True)
class TrackerParams:
    """SiamFC tracking hyper-parameters (defaults: the reference implementation's values)."""

    exemplar_size: int = 127
    instance_size: int = 255
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    scale_bias: float = 0.0       # each scale's peak times factor ** bias (0: none; > 0 favours
                                  # growing the box, < 0 shrinking it)
    window_influence: float = 0.176
    template_lr: float = 0.0      # exemplar update rate per frame (0: SiamFC's fixed exemplar)
    exemplar_context: float = 1.0  # contrast kept by the exemplar's pixels outside the target
                                   # box (1: SiamFC's full context, 0: the box alone)
    motion_lr: float = 0.0        # velocity update rate of the search centre (0: no prediction)
    distractor_weight: float = 0.0  # weight of the distractor embedding taken off the exemplar
                                    # (0: none, SiamFC's plain exemplar)
    distractor_ratio: float = 0.6   # a response peak within this share of the maximum (above
                                    # the map's minimum) and off the target counts as a distractor
    distractor_lr: float = 0.2      # rate at which new distractors join the distractor embedding
    scale_filter_lr: float = 0.0  # learning rate of a DSST scale filter that sets the size after
                                  # each frame (0: none, SiamFC's own scale search alone)
    scale_filter_num: int = 33    # scales the scale filter compares
    scale_filter_step: float = 1.02  # ratio between neighbouring scales of the scale filter
    feature_filter_weight: float = 0.0  # weight of the feature filter's response beside
                                        # SiamFC's (0: none)
    feature_filter_lr: float = 0.01     # learning rate of the feature filter per frame
    feature_filter_sigma: float = 1.0   # width of its desired response, in feature cells
    color_weight: float = 0.0     # weight of the colour model's score beside SiamFC's (0: none)
    color_lr: float = 0.04        # learning rate of the colour histograms per frame
    color_bins: int = 32          # colour histogram bins a channel
    response_up: int = 16
    total_stride: int = 8
    min_size: float = 2.0
    scale_limit: float = 0.0      # the size stays within [1/limit, limit] x the first box's
                                  # (0: no limit)

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
                raise ParamsError(f"tracker setting {field.name} must be an integer, got {value!r}")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ParamsError(f"tracker setting {field.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ParamsError(f"tracker setting {field.name} must be finite, got {value!r}")
        rules = {
            "exemplar_size": (self.exemplar_size >= 16, "at least 16"),
            "instance_size": (self.instance_size > self.exemplar_size,
                              "larger than exemplar_size"),
            "context": (0 <= self.context <= 4, "in [0, 4]"),
            "scale_num": (self.scale_num >= 1 and self.scale_num % 2 == 1, "odd and positive"),
            "scale_step": (1 <= self.scale_step <= 2, "in [1, 2]"),
            "scale_lr": (0 <= self.scale_lr <= 1, "in [0, 1]"),
            "scale_penalty": (0 < self.scale_penalty <= 1, "in (0, 1]"),
            "scale_bias": (-4 <= self.scale_bias <= 4, "in [-4, 4]"),
            "window_influence": (0 <= self.window_influence <= 1, "in [0, 1]"),
            "template_lr": (0 <= self.template_lr <= 1, "in [0, 1]"),
            "exemplar_context": (0 <= self.exemplar_context <= 1, "in [0, 1]"),
            "motion_lr": (0 <= self.motion_lr <= 1, "in [0, 1]"),
            "distractor_weight": (0 <= self.distractor_weight <= 2, "in [0, 2]"),
            "distractor_ratio": (0 < self.distractor_ratio <= 1, "in (0, 1]"),
            "distractor_lr": (0 < self.distractor_lr <= 1, "in (0, 1]"),
            "scale_filter_lr": (0 <= self.scale_filter_lr <= 1, "in [0, 1]"),
            "scale_filter_num": (self.scale_filter_num >= 1 and self.scale_filter_num % 2 == 1,
                                 "odd and positive"),
            "scale_filter_step": (1 < self.scale_filter_step <= 2, "in (1, 2]"),
            "feature_filter_weight": (0 <= self.feature_filter_weight <= 4, "in [0, 4]"),
            "feature_filter_lr": (0 < self.feature_filter_lr <= 1, "in (0, 1]"),
            "feature_filter_sigma": (0 < self.feature_filter_sigma <= 8, "in (0, 8]"),
            "color_weight": (0 <= self.color_weight <= 1, "in [0, 1]"),
            "color_lr": (0 < self.color_lr <= 1, "in (0, 1]"),
            "color_bins": (BINS_RANGE[0] <= self.color_bins <= BINS_RANGE[1],
                           "in [{}, {}]".format(*BINS_RANGE)),
            "response_up": (1 <= self.response_up <= 64, "in [1, 64]"),
            "total_stride": (self.total_stride >= 1, "positive"),
            "min_size": (self.min_size > 0, "positive"),
            "scale_limit": (self.scale_limit == 0 or self.scale_limit >= 1, "0 (none) or >= 1"),
        }
        for name, (ok, rule) in rules.items():
            if not ok:
                raise ParamsError(f"tracker setting {name}={getattr(self, name)!r} must be {rule}")


PER_TRACKER = "per_tracker"   # a settings file's object of each tracker's own settings


@dataclass(frozen=True)
class SettingsFile:
    """A tracker settings file: the settings every tracker runs with, and the trackers (by
    registry name) that run with settings of their own."""

    shared: TrackerParams
    own: Mapping[str, TrackerParams]

    def for_tracker(self, name: str) -> TrackerParams:
        """The settings tracker ``name`` runs with."""
        return self.own.get(name, self.shared)


def _params(values: dict, where: str) -> TrackerParams:
    known = [f.name for f in fields(TrackerParams)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParamsError(f"tracker settings {where}: unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(known)}")
    try:
        return TrackerParams(**values)
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc}") from exc


def load_params(path: Union[str, Path]) -> SettingsFile:
    """Settings from a JSON object of ``TrackerParams`` fields (``experiments/tune_tracker.py``
    writes one); fields it leaves out keep the reference values. Its optional ``per_tracker``
    object gives a tracker the fields where it differs from the rest, e.g.
    ``{"motion_lr": 0.3, "per_tracker": {"siamfc": {"motion_lr": 0.0}}}``. ``ParamsError`` for
    a file that is missing or unreadable, an unknown field or a value out of range."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParamsError(f"cannot read tracker settings {path}: {exc}; give a JSON object of "
                          f"settings, e.g. {{\"window_influence\": 0.25}}") from exc
    if not isinstance(values, dict):
        raise ParamsError(f"tracker settings {path} must be a JSON object of settings")
    per_tracker = values.pop(PER_TRACKER, {})
    if not isinstance(per_tracker, dict) or not all(isinstance(v, dict)
                                                    for v in per_tracker.values()):
        raise ParamsError(f"tracker settings {path}: {PER_TRACKER} must map tracker names to "
                          f"objects of settings, e.g. {{\"siamfc\": {{\"motion_lr\": 0.0}}}}")
    shared = _params(values, str(path))
    own = {name: _params({**values, **changes}, f"{path} ({PER_TRACKER} {name})")
           for name, changes in per_tracker.items()}
    return SettingsFile(shared, own)


def changed_params(params: TrackerParams) -> Dict[str, float]:
    """The settings that differ from the reference values (empty: the reference tracker)."""
    return {f.name: getattr(params, f.name) for f in fields(params)
            if getattr(params, f.name) != f.default}


def as_rgb(image) -> np.ndarray:
    """A PIL image or numpy array (gray / RGB / RGBA) as an H x W x 3 uint8 RGB array."""
    if isinstance(image, Image.Image) and image.mode != "RGB":
        image = image.convert("RGB")
    return to_rgb_array(image)


def grey(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 image as a float64 grey image (what the scale filter reads)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)


def distractor_cells(response: np.ndarray, target: np.ndarray, half_size: np.ndarray,
                     ratio: float) -> list:
    """Cells (row, col) of a response map's local maxima (3 x 3) that come within ``ratio`` of
    its maximum, measured from its minimum, and lie outside the target: more than ``half_size``
    (x, y) cells from the ``target`` cell (x, y) along x or along y."""
    floor = response.min()
    threshold = floor + ratio * (response.max() - floor)
    peaks = (response >= cv2.dilate(response, np.ones((3, 3), np.uint8))) & (response >= threshold)
    rows, cols = np.nonzero(peaks)
    away = (np.abs(cols - target[0]) > half_size[0]) | (np.abs(rows - target[1]) > half_size[1])
    return list(zip(rows[away].tolist(), cols[away].tolist()))


def validate_box(box: Sequence[float], width: int, height: int) -> np.ndarray:
    """The box as a float array; ``ValueError`` when it is malformed or lies entirely outside
    the image."""
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.size != 4 or not np.all(np.isfinite(box)):
        raise ValueError(f"initial box must be 4 finite numbers (x, y, w, h), got {box.tolist()}")
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ValueError(f"initial box {box.tolist()} has a non-positive width or height")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(f"initial box {box.tolist()} lies entirely outside the "
                         f"{width}x{height} image; give a box that overlaps the frame")
    return box


class SiamFCTracker(Tracker):
    """Deterministic SiamFC tracker (got10k ``Tracker`` interface) around a SiamFC network.

    ``net`` needs ``net.backbone(images)`` (N x 3 x H x W float, raw 0-255 RGB) and
    ``net.out_scale``; the full-precision, XNOR and RB-SF networks and the packed engine fit.
    ``device`` ("cpu", "cuda", ...) is where a torch network runs, in full float32 (no TF32);
    crops and the response post-processing stay on the CPU.
    """

    def __init__(self, net, name: str = "SiamFC", params: TrackerParams = TrackerParams(),
                 device: str = "cpu"):
        super().__init__(name=name, is_deterministic=True)
        self.device = torch.device(device)
        if isinstance(net, PackedSiamFC) and self.device.type != "cpu":
            raise ValueError(f"the packed engine runs on the CPU only, not on {device}")
        if self.device.type == "cuda":
            exact_float32_on_gpu()
        if isinstance(net, torch.nn.Module):
            net = net.to(self.device).eval()
        self.net = net
        self.params = params
        p = params
        self.response_size = self._response_size()
        self.upscale_size = p.response_up * self.response_size
        hann = np.hanning(self.upscale_size)
        window = np.outer(hann, hann)
        self.window = window / window.sum()
        # the crop pixel (x or y) that each row / column of the upsampled response stands for
        self.response_coords = ((p.instance_size - 1) / 2.0 + (np.arange(self.upscale_size)
                                - (self.upscale_size - 1) / 2.0) * p.total_stride / p.response_up)
        self.scale_factors = p.scale_step ** np.linspace(-(p.scale_num // 2), p.scale_num // 2,
                                                         p.scale_num)
        # each scale's peak weight: the penalty off the centre scale, times the scale prior
        self.scale_weights = np.where(np.arange(p.scale_num) == p.scale_num // 2, 1.0,
                                      p.scale_penalty) * self.scale_factors ** p.scale_bias
        self.kernel: Optional[torch.Tensor] = None
        self.distractors: Optional[torch.Tensor] = None
        self.scale_filter = (ScaleFilter(p.scale_filter_num, p.scale_filter_step,
                                         p.scale_filter_lr) if p.scale_filter_lr > 0 else None)
        self.feature_filter: Optional[FeatureFilter] = None
        self.feature_filter_gain = 0.0
        self.color_model: Optional[ColorModel] = None

    def _response_size(self) -> int:
        p = self.params
        with torch.no_grad():
            z = self.net.backbone(torch.zeros(1, 3, p.exemplar_size, p.exemplar_size,
                                              device=self.device))
            x = self.net.backbone(torch.zeros(1, 3, p.instance_size, p.instance_size,
                                              device=self.device))
        return x.shape[-1] - z.shape[-1] + 1

    def _embed(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """Backbone of the crops: N x 3 x H x W in channels-last memory, float32 converted by
        numpy (a multithreaded PyTorch copy stalls while another process holds a core), or
        the uint8 pixels themselves for the packed engine (the same embedding, no copy)."""
        batch = np.stack(crops)
        if not isinstance(self.net, PackedSiamFC):
            batch = batch.astype(np.float32)
        batch = torch.from_numpy(batch).to(self.device)
        return self.net.backbone(batch.permute(0, 3, 1, 2))

    @torch.no_grad()
    def init(self, image, box: Sequence[float]) -> None:
        """Start tracking the target ``box`` (x, y, w, h) in ``image``."""
        p = self.params
        image = as_rgb(image)
        height, width = image.shape[:2]
        x, y, w, h = validate_box(box, width, height)
        self.image_size = np.array([width, height], dtype=np.float64)
        self.center = np.array([x + (w - 1) / 2.0, y + (h - 1) / 2.0])
        self.velocity = np.zeros(2)
        self.first_size = np.array([w, h], dtype=np.float64)
        self.set_size(w, h)
        self.fill = mean_color(image)
        self.kernel = self._embed([self._exemplar(image)])
        self.distractors = None
        if self.scale_filter is not None:
            self.scale_filter.start(grey(image), self.center, self.target_size)
        if p.feature_filter_weight > 0:
            self._start_feature_filter(image)
        self.color_model = None
        if p.color_weight > 0:
            self.color_model = ColorModel(p.color_bins, p.color_lr)
            self.color_model.learn(image, self.center, self.target_size)

    def _exemplar(self, image: np.ndarray) -> np.ndarray:
        """The exemplar crop around the current box, its context faded by ``exemplar_context``."""
        p = self.params
        crop = crop_and_resize(image, tuple(self.center), self.z_size, p.exemplar_size, self.fill)
        if p.exemplar_context == 1:
            return crop
        half = self.target_size * p.exemplar_size / self.z_size / 2
        axis = np.abs(np.arange(p.exemplar_size) - (p.exemplar_size - 1) / 2.0)
        inside = (axis[:, None] <= half[1]) & (axis[None, :] <= half[0])
        fill = np.asarray(self.fill, dtype=np.float32)
        faded = fill + p.exemplar_context * (crop.astype(np.float32) - fill)
        return np.where(inside[..., None], crop, np.round(faded)).astype(np.uint8)

    def _correlate(self, kernel: torch.Tensor, embedding: torch.Tensor) -> np.ndarray:
        """SiamFC's response maps (N x R x R) of the search embeddings to ``kernel``."""
        return correlate(kernel, embedding, self.net.out_scale,
                         "torch" if self.device.type != "cpu" else None)[:, 0].cpu().numpy()

    def _start_feature_filter(self, image: np.ndarray) -> None:
        """Learn the feature filter from the first frame's search crop, and the gain that gives
        its response on that crop the range of SiamFC's."""
        p = self.params
        search = crop_and_resize(image, tuple(self.center), self.x_size, p.instance_size,
                                 self.fill)
        embedding = self._embed([search])
        self.feature_filter = FeatureFilter(*embedding.shape[-2:], self.response_size,
                                            p.feature_filter_sigma, p.feature_filter_lr)
        spectra = self.feature_filter.transform(embedding.cpu())
        self.feature_filter.start(spectra[0])
        own = np.ptp(self.feature_filter.respond(spectra))
        siamese = np.ptp(self._correlate(self.kernel, embedding))
        self.feature_filter_gain = float(siamese / own) if own > 0 else 0.0

    @torch.no_grad()
    def update(self, image) -> np.ndarray:
        """Locate the target in the next ``image``; returns the box (x, y, w, h)."""
        if self.kernel is None:
            raise RuntimeError("SiamFCTracker.update called before init(image, box)")
        p = self.params
        image = as_rgb(image)
        self.image_size = np.array(image.shape[1::-1], dtype=np.float64)
        previous = self.center
        self.center = self.center + self.velocity
        self._clamp_state()
        crops = [crop_and_resize(image, tuple(self.center), self.x_size * f, p.instance_size,
                                 self.fill) for f in self.scale_factors]
        kernel = self.kernel
        if self.distractors is not None:
            kernel = kernel - p.distractor_weight * self.distractors
        embedding = self._embed(crops)
        responses = self._correlate(kernel, embedding)
        if self.feature_filter is not None:
            spectra = self.feature_filter.transform(embedding.cpu())
            responses = responses + (p.feature_filter_weight * self.feature_filter_gain
                                     * self.feature_filter.respond(spectra))
        scale_id, peak = self._locate(responses, crops)
        scale = self.scale_factors[scale_id]
        if p.distractor_weight > 0:
            self._learn_distractors(responses[scale_id], embedding[scale_id], peak, scale)
        offset = peak - (self.upscale_size - 1) / 2.0
        if self.feature_filter is not None:     # the shift in feature cells of that crop
            self.feature_filter.learn(spectra[scale_id], offset / p.response_up)
        offset = offset * p.total_stride / p.response_up * self.x_size * scale / p.instance_size
        self.center = self.center + offset
        rate = (1 - p.scale_lr) + p.scale_lr * scale
        self.set_size(*(self.target_size * rate))
        if self.scale_filter is not None:
            frame = grey(image)
            self.set_size(*(self.target_size
                            * self.scale_filter.estimate(frame, self.center, self.target_size)))
            self.scale_filter.learn(frame, self.center, self.target_size)
        if self.color_model is not None:
            self.color_model.learn(image, self.center, self.target_size)
        self.velocity = blend(self.velocity, self.center - previous, p.motion_lr)
        if p.template_lr > 0:
            self.kernel = blend(self.kernel, self._embed([self._exemplar(image)]), p.template_lr)
        return self.box()

    def _learn_distractors(self, response: np.ndarray, embedding: torch.Tensor, peak: np.ndarray,
                           scale: float) -> None:
        """Fold the mean embedding of this frame's distractors (``distractor_cells`` of the
        winning scale's map) into the running distractor embedding."""
        p = self.params
        target = (peak + 0.5) / p.response_up - 0.5
        half_size = self.target_size * p.instance_size / (self.x_size * scale) / 2 / p.total_stride
        cells = distractor_cells(response, target, half_size, p.distractor_ratio)
        if not cells:
            return
        height, width = self.kernel.shape[-2:]
        found = torch.stack([embedding[:, r:r + height, c:c + width] for r, c in cells])
        found = found.mean(dim=0, keepdim=True)
        self.distractors = blend(self.distractors, found, p.distractor_lr)

    def _locate(self, responses: np.ndarray, crops: Optional[Sequence[np.ndarray]] = None):
        """Best scale index and the peak (x, y) in the upsampled response of that scale (mixed
        with the colour model's score on that scale's crop, when there is a colour model).

        Scale weights are positive, and multiplying by one is monotonic in floating point, so
        each weighted map's maximum is its weighted maximum: only the winning scale's map
        goes through the float64 post-processing.
        """
        p = self.params
        size = (self.upscale_size, self.upscale_size)
        up = [cv2.resize(r.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
              for r in responses]
        peaks = np.array([u.max() for u in up], dtype=np.float64) * self.scale_weights
        scale_id = int(np.argmax(peaks))
        response = up[scale_id].astype(np.float64) * self.scale_weights[scale_id]
        response -= response.min()
        if self.color_model is not None and crops is not None:
            response /= response.max() + 1e-16
            box = self.target_size * p.instance_size / (self.x_size * self.scale_factors[scale_id])
            color = self.color_model.respond(crops[scale_id], box, self.response_coords)
            response = (1 - p.color_weight) * response + p.color_weight * color
            response -= response.min()
        response /= response.sum() + 1e-16
        response = (1 - p.window_influence) * response + p.window_influence * self.window
        row, col = np.unravel_index(int(np.argmax(response)), response.shape)
        return scale_id, np.array([col, row], dtype=np.float64)

    def box(self) -> np.ndarray:
        """The tracked box (x, y, w, h) as the state stands."""
        return np.array([*(self.center - (self.target_size - 1) / 2.0), *self.target_size])

    def set_size(self, width: float, height: float) -> None:
        """Track the target at this size from now on (``update`` calls it with its estimate;
        a diagnostic that knows the true size can too); the search region follows."""
        p = self.params
        self.target_size = np.array([width, height], dtype=np.float64)
        self._clamp_state()
        self.z_size = exemplar_crop_size(*self.target_size, context=p.context)
        self.x_size = self.z_size * p.instance_size / p.exemplar_size

    def _clamp_state(self) -> None:
        """Keep the centre inside the image and the size within [min_size, image size] (and
        within ``scale_limit`` of the first box's)."""
        p = self.params
        self.center = np.clip(self.center, 0.0, self.image_size - 1)
        if p.scale_limit > 0:
            self.target_size = np.clip(self.target_size, self.first_size / p.scale_limit,
                                       self.first_size * p.scale_limit)
        self.target_size = np.clip(self.target_size, p.min_size,
                                   np.maximum(self.image_size, p.min_size))
