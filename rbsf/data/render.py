"""Training sequences from real imagery: matted objects over real backgrounds, and real motion.

Two kinds of sequence, both written in the GOT-10k layout (``rbsf.data.load_sequences`` and the
got10k toolkit's ``GOT10k`` read them like the real data set):

* **stamp sequences** (``render_stamp_sequence``): an alpha-matted object (a Tux Paint stamp,
  ``rbsf.data.stamps``) moving over a real background (a wallpaper or photo) seen through a
  panning, zooming camera, with scale, aspect and in-plane rotation change, look-alike
  distractors (other stamps of the same category, or the same stamp recoloured when the
  category has no other), partial and full occlusion by other stamps, illumination drift,
  camera-shake motion blur, sensor noise and JPEG compression. The box is the tight box of the
  rendered mask; visibility labels come from the visible share of the mask.
* **real-motion sequences** (``video_tracks``): patches of a real video followed with pyramidal
  Lucas-Kanade optical flow, checked forward-backward: a point counts when tracking it to the
  next frame and back lands within ``FB_MAX_ERROR`` pixels of where it started; a track goes on
  while at least ``FB_MIN_SHARE`` of its points pass, and ends at the first frame where they
  do not. The box moves by the median point motion and scales by the median change of
  pairwise point distances (Median Flow).

Stamps and backgrounds fall into fixed splits (``stamp_split``, ``background_split``):
training, held-out (for the final evaluation only) and tuning (for choosing settings and
weights on objects and backgrounds a run reserving it never trained on). Some background
sources are kept whole out of training (``WHOLE_SOURCE_SPLITS``): the held-out ones, and the
tuning sources, whose backgrounds come from sources no training set uses at all.
``write_real_dataset`` writes the training set (GOT-10k ``train/``) from the training sources
and videos; ``write_rendered_otb`` writes OTB-layout sequences: held-out or tuning ones from
that split only, or validation ones, new renders from the training sources. Both
build the data set in ``rbsf.files.atomic_dir`` (a hidden sibling renamed when complete), so a
data set is complete or absent.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from rbsf.data.heldout import read_bgr
from rbsf.data.sources import shrink
from rbsf.data.stamps import StampInfo, read_stamp
from rbsf.data.synthetic import (Occlusion, RenderedFrame, Sprite, Walk, blend, hide, motion_blur,
                                 write_sequence)
from rbsf.devices import fork_safe_opencv
from rbsf.errors import RBSFError
from rbsf.files import atomic_dir

HELDOUT_STAMP_PERCENT = 15
TUNING_PERCENT = 10
WHOLE_SOURCE_SPLITS = {"ukui-wallpapers": "held-out", "sklearn": "held-out",
                       "lomiri-wallpapers-16.04": "tuning-sources",
                       "lomiri-wallpapers-20.04": "tuning-sources"}
TRAIN_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4")   # carphone_pristine.mp4 is held out
FB_MAX_ERROR = 1.0
FB_MIN_SHARE = 0.6
MAX_VIDEO_SIDE = 640
JPEG_QUALITY = 88
SOURCE_SPLITS = ("training", "held-out", "tuning", "tuning-sources")
CUTOUT_CATEGORY = "cutout"
CUTOUT_COUNT = 500
RESOLUTION = re.compile(r"\d+x\d+")
VARIANT_SUFFIX = re.compile(r"(?:[_-](?:\d+x\d+|d|l|dark|light|left|right))+$", re.IGNORECASE)
RENDERED_SPLITS = {"held-out": "Heldout", "validation": "Val", "tuning": "Tune",
                   "tuning-sources": "TuneSrc"}  # -> folder prefix


class RenderError(RBSFError):
    """Inputs that cannot make a data set (no stamps, no backgrounds, a non-empty output)."""


def _bucket(key: str) -> int:
    return zlib.crc32(key.encode()) % 100


def stamp_split(path: str) -> str:
    """The split of a stamp (path relative to the stamps folder), by a fixed hash of the path:
    ``HELDOUT_STAMP_PERCENT`` percent held out, the next ``TUNING_PERCENT`` percent for tuning."""
    bucket = _bucket(path)
    if bucket < HELDOUT_STAMP_PERCENT:
        return "held-out"
    return "tuning" if bucket < HELDOUT_STAMP_PERCENT + TUNING_PERCENT else "training"


def picture_name(relative: str) -> str:
    """The picture a background file shows (``relative``: its path inside its source), the same
    for all its variants: sizes (``Elephants_3840x2160.jpg``; a Plasma wallpaper's
    ``NAME/contents/images/WxH.jpg`` is NAME), dark and light (``-d``, ``-l``, ``-Dark``),
    left and right (a stereo pair)."""
    path = PurePosixPath(relative)
    stem = path.parts[0] if RESOLUTION.fullmatch(path.stem) and len(path.parts) > 1 else path.stem
    return VARIANT_SUFFIX.sub("", stem).lower() or stem.lower()


def background_split(source: str, relative: str) -> str:
    """The split of a background file (``relative``: its path inside its source): whole
    sources by ``WHOLE_SOURCE_SPLITS``; of the others, ``TUNING_PERCENT`` percent tuning by a
    fixed hash of ``source/picture`` (``picture_name``), so that the variants of one picture
    share a split."""
    if source in WHOLE_SOURCE_SPLITS:
        return WHOLE_SOURCE_SPLITS[source]
    bucket = _bucket(f"{source}/{picture_name(relative)}")
    return "tuning" if bucket < TUNING_PERCENT else "training"


def source_splits(source: str) -> Tuple[str, ...]:
    """The splits the files of a background source can fall in."""
    if source in WHOLE_SOURCE_SPLITS:
        return (WHOLE_SOURCE_SPLITS[source],)
    return ("training", "tuning")


def one_file_per_picture(files: Sequence[Tuple[str, str, Path]]) -> List[Tuple[str, str, Path]]:
    """Of the (source, relative path, file) backgrounds, the largest file (in bytes) of each
    picture (``picture_name``), in the given order: a picture shipped in many sizes, or dark and
    light, is drawn as often as one shipped once."""
    largest: Dict[Tuple[str, str], Tuple[int, Path]] = {}
    for source, relative, path in files:
        key, size = (source, picture_name(relative)), path.stat().st_size
        if key not in largest or size > largest[key][0]:
            largest[key] = (size, path)
    kept = {path for _, path in largest.values()}
    return [item for item in files if item[2] in kept]


class LibrarySplits(NamedTuple):
    """The source splits one library draws its stamps and its backgrounds from."""

    stamps: Tuple[str, ...]
    backgrounds: Tuple[str, ...]


def library_splits(split: str, reserved: Sequence[str] = ()) -> LibrarySplits:
    """The source splits a library of ``split`` draws from. The training library takes the
    tuning split too unless ``reserved`` names it (the shipped training set was built before
    that split existed, so it includes those stamps and backgrounds); it never takes the
    whole sources of the held-out and tuning-sources splits. The tuning-sources library draws
    the tuning split's stamps over the tuning sources' backgrounds."""
    if split not in SOURCE_SPLITS:
        raise RenderError(f"unknown split {split!r}; choose from {', '.join(SOURCE_SPLITS)}")
    if split == "training":
        kept = tuple(s for s in ("training", "tuning") if s not in reserved)
        return LibrarySplits(kept, kept)
    if split == "tuning-sources":
        return LibrarySplits(("tuning",), (split,))
    return LibrarySplits((split,), (split,))


def split_stamps(infos: Sequence[StampInfo], splits: Sequence[str]) -> List[StampInfo]:
    """Kept stamps (weight > 0) whose split is one of ``splits``."""
    return [i for i in infos if i.weight > 0 and stamp_split(i.path) in splits]


@dataclass
class Matte:
    """One stamp ready to draw: colour, alpha mask and what it is."""

    rgb: np.ndarray
    alpha: np.ndarray
    category: str
    name: str

    def sprite(self, gain: Optional[np.ndarray] = None) -> Sprite:
        tex = self.rgb.astype(np.float32) if gain is None else \
            np.clip(self.rgb.astype(np.float32) * gain, 0, 255)
        return Sprite(tex, self.alpha)


@dataclass
class Library:
    """The stamps (with sampling weights) and backgrounds one data set draws from."""

    mattes: List[Matte]
    weights: np.ndarray
    backgrounds: List[np.ndarray]
    background_names: List[str]     # one a background, for manifests (``<source>/<file>``)
    by_category: Dict[str, List[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.mattes:
            raise RenderError("no stamp to render: fetch the stamps source and build its index "
                              "(`python tools/prepare_data.py fetch tuxpaint-stamps` then "
                              "`stamps`)")
        if not self.backgrounds:
            raise RenderError("no background to render on: fetch a backgrounds source "
                              "(`python tools/prepare_data.py fetch mate-backgrounds`, ...)")
        if len(self.background_names) != len(self.backgrounds):
            raise RenderError(f"{len(self.background_names)} background names for "
                              f"{len(self.backgrounds)} backgrounds")
        self.weights = np.asarray(self.weights, np.float64) / np.sum(self.weights)
        for k, matte in enumerate(self.mattes):
            self.by_category.setdefault(matte.category, []).append(k)

    @property
    def is_cutout(self) -> np.ndarray:
        """Which mattes are cut-outs (``with_cutouts``) rather than stamps."""
        return np.array([m.category == CUTOUT_CATEGORY for m in self.mattes], dtype=bool)


def crop_to_mask(rgb: np.ndarray, alpha: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """A stamp's image and alpha cut to the box of its visible pixels (alpha > 0.02)."""
    ys, xs = np.nonzero(alpha > 0.02)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), np.ascontiguousarray(alpha[y0:y1, x0:x1])


def load_library(stamp_root: Path, infos: Sequence[StampInfo],
                 background_files: Sequence[Path], max_side: int = 1280,
                 background_names: Optional[Sequence[str]] = None) -> Library:
    """Read the given stamps (cropped to their mask) and backgrounds (at most ``max_side``),
    each background named by ``background_names`` (default: its file name); a background that
    cannot be read is left out."""
    mattes, weights = [], []
    for info in infos:
        rgb, alpha = read_stamp(Path(stamp_root) / info.path)
        rgb, alpha = crop_to_mask(rgb, alpha)
        mattes.append(Matte(rgb, alpha, info.category, info.path))
        weights.append(info.weight)
    names = background_names or [Path(path).name for path in background_files]
    backgrounds, kept = [], []
    for path, name in zip(background_files, names, strict=True):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            backgrounds.append(cv2.cvtColor(shrink(bgr, max_side), cv2.COLOR_BGR2RGB))
            kept.append(name)
    return Library(mattes, np.array(weights), backgrounds, kept)


def cutout_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random smooth closed shape touching the four sides of a ``height`` x ``width`` box, as
    a float32 alpha in [0, 1]: an ellipse whose radius wobbles with harmonics 2-5 of random
    phase (at most +-40 % in all), anti-aliased by drawing at four times the size."""
    angles = np.linspace(0.0, 2 * np.pi, 181)[:-1]
    radius = np.ones_like(angles)
    for k in range(2, 6):
        radius += rng.uniform(0.0, 0.4 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    xs, ys = radius * np.cos(angles), radius * np.sin(angles)
    xs = (xs - xs.min()) / (xs.max() - xs.min()) * (4 * width - 1)
    ys = (ys - ys.min()) / (ys.max() - ys.min()) * (4 * height - 1)
    canvas = np.zeros((4 * height, 4 * width), np.float32)
    cv2.fillPoly(canvas, [np.round(np.stack([xs, ys], 1)).astype(np.int32)], 1.0)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)


def cutout_mattes(rng: np.random.Generator, backgrounds: Sequence[np.ndarray],
                  background_names: Sequence[str], count: int) -> List[Matte]:
    """``count`` cut-outs: random smooth shapes (``cutout_mask``) of random backgrounds, 80 to
    220 px on their longer side with aspect ratios from 1:3 to 3:1, as mattes of the category
    ``CUTOUT_CATEGORY`` (so that their look-alikes are other cut-outs). Each is named by its
    background and box: ``cutout:<background>@x,y,w,h``."""
    mattes = []
    for _ in range(count):
        k = int(rng.integers(len(backgrounds)))
        image = backgrounds[k]
        side, aspect = rng.uniform(80, 220), math.exp(rng.uniform(-1.1, 1.1))
        w = int(min(image.shape[1], max(16, side * min(1.0, aspect))))
        h = int(min(image.shape[0], max(16, side * min(1.0, 1 / aspect))))
        x = int(rng.integers(image.shape[1] - w + 1))
        y = int(rng.integers(image.shape[0] - h + 1))
        mattes.append(Matte(np.ascontiguousarray(image[y:y + h, x:x + w]),
                            cutout_mask(rng, h, w), CUTOUT_CATEGORY,
                            f"cutout:{background_names[k]}@{x},{y},{w},{h}"))
    return mattes


def with_cutouts(library: Library, share: float, seed: int,
                 count: int = CUTOUT_COUNT) -> Library:
    """``library`` with ``count`` cut-outs of its own backgrounds (``cutout_mattes``, drawn
    with ``seed``) beside its stamps, drawn as targets ``share`` of the time (each stamp keeps
    its weight relative to the others)."""
    if not 0.0 <= share < 1.0:
        raise RenderError(f"cut-out share must be in [0, 1), got {share}")
    if share == 0.0 or count == 0:
        return library
    cutouts = cutout_mattes(np.random.default_rng([seed, 3]), library.backgrounds,
                            library.background_names, count)
    weights = np.concatenate([library.weights * (1.0 - share), np.full(count, share / count)])
    return Library(library.mattes + cutouts, weights, library.backgrounds,
                   library.background_names)


def _look_alike(rng: np.random.Generator, library: Library, target: int) -> Sprite:
    """Another stamp of the target's category (mostly), else the target recoloured."""
    same = [k for k in library.by_category[library.mattes[target].category] if k != target]
    if same and rng.random() < 0.8:
        return library.mattes[int(rng.choice(same))].sprite()
    return library.mattes[target].sprite(rng.uniform(0.75, 1.25, 3).astype(np.float32))


def _distractors(rng: np.random.Generator, library: Library, target: int) -> List[Sprite]:
    """Up to two look-alikes wandering on their own."""
    return [_look_alike(rng, library, target) for _ in range(int(rng.choice([0, 1, 1, 2])))]


class Crossing:
    """A look-alike that passes the target: its centre moves in a straight line relative to the
    target's, ``speed`` target sides a frame, and comes closest (``miss`` sides aside) at frame
    ``at``, a third to three fifths into the sequence. It is about the target's size and passes
    in front of the target (hiding it) or behind it."""

    def __init__(self, rng: np.random.Generator, sprite: Sprite, num_frames: int):
        self.sprite = sprite
        self.at = int(rng.uniform(0.35, 0.6) * num_frames)
        angle = rng.uniform(0, 2 * np.pi)
        self.direction = np.array([math.cos(angle), math.sin(angle)])
        self.speed = rng.uniform(0.04, 0.12)
        self.miss = rng.uniform(-0.35, 0.35)
        self.size = rng.uniform(0.85, 1.15)
        self.in_front = bool(rng.random() < 0.5)
        self.area = max(1.0, float(sprite.mask.sum()))

    def layer(self, t: int, cx: float, cy: float, target_area: float, size: Tuple[int, int]):
        """The look-alike drawn at frame t beside a target centred at (cx, cy) whose mask covers
        ``target_area`` pixels."""
        side = math.sqrt(target_area)
        normal = np.array([-self.direction[1], self.direction[0]])
        offset = self.direction * (t - self.at) * self.speed * side + normal * self.miss * side
        scale = self.size * math.sqrt(target_area / self.area)
        matrix = self.sprite.matrix(cx + offset[0], cy + offset[1], scale, 1.0, 0.0)
        return self.sprite.render(matrix, size)


def _mask_box(layer) -> np.ndarray:
    """Tight x, y, w, h box of a drawn layer's mask (alpha > 0.5) in the frame; NaN when none."""
    ys, xs = np.nonzero(layer.alpha > 0.5)
    if not len(xs):
        return np.full(4, np.nan)
    return np.array([xs.min() + layer.x0, ys.min() + layer.y0,
                     xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], float)


class _Motion:
    """Smooth centre, scale, aspect and rotation walks of one object in a W x H frame."""

    def __init__(self, rng: np.random.Generator, W: int, H: int, scale_step: float,
                 spin: float):
        self.x = Walk(rng, rng.uniform(0.25, 0.75) * W, 0.1 * W, 0.9 * W, step=0.005 * W)
        self.y = Walk(rng, rng.uniform(0.25, 0.75) * H, 0.1 * H, 0.9 * H, step=0.005 * H)
        self.scale = Walk(rng, 0.0, -0.5, 0.5, step=scale_step)
        self.aspect = Walk(rng, 0.0, -0.25, 0.25, step=0.005)
        self.angle = Walk(rng, 0.0, -30.0, 30.0, step=spin)

    def matrix(self, sprite: Sprite, base_scale: float,
               zoom: float) -> Tuple[np.ndarray, float, float]:
        cx, cy = self.x.next(), self.y.next()
        m = sprite.matrix(cx, cy, base_scale * zoom * math.exp(self.scale.next()),
                          math.exp(self.aspect.next()), self.angle.next())
        return m, cx, cy


def _base_scale(rng: np.random.Generator, sprite: Sprite, H: int) -> float:
    h, w = sprite.mask.shape
    return rng.uniform(0.12, 0.4) * H / max(h, w)


def sequence_rng(seed: int, index: int) -> np.random.Generator:
    """The generator that renders stamp sequence ``index`` of a set made with ``seed``."""
    return np.random.default_rng([seed, 1, index])


def _draw_target(rng: np.random.Generator, library: Library) -> int:
    return int(rng.choice(len(library.mattes), p=library.weights))


class _Cast(NamedTuple):
    """A stamp sequence's first draws: its target, the look-alikes wandering beside it, and the
    background they move over."""

    target_index: int
    target: Sprite
    base: float
    motion: _Motion
    others: List[Tuple[Sprite, float, _Motion]]
    background_index: int


def _draw_cast(rng: np.random.Generator, library: Library, frame_size: Tuple[int, int]) -> _Cast:
    W, H = frame_size
    target_index = _draw_target(rng, library)
    target = library.mattes[target_index].sprite()
    base = _base_scale(rng, target, H)
    motion = _Motion(rng, W, H, 0.008, float(rng.choice([0.0, 0.3, 0.8])))
    others = [(s, _base_scale(rng, s, H), _Motion(rng, W, H, 0.005, 0.3))
              for s in _distractors(rng, library, target_index)]
    return _Cast(target_index, target, base, motion, others,
                 int(rng.integers(len(library.backgrounds))))


def sequence_cast_names(library: Library, seed: int, index: int,
                        frame_size: Tuple[int, int]) -> Tuple[str, str]:
    """The names of the target stamp and of the background of stamp sequence ``index`` of a set
    of ``frame_size`` made with ``seed`` from ``library`` (its generator replayed to the
    background's draw)."""
    cast = _draw_cast(sequence_rng(seed, index), library, frame_size)
    return (library.mattes[cast.target_index].name,
            library.background_names[cast.background_index])


def render_stamp_sequence(rng: np.random.Generator, library: Library, num_frames: int,
                          frame_size: Tuple[int, int] = (480, 360),
                          crossing: bool = False) -> Iterator[RenderedFrame]:
    """One sequence of ``num_frames`` frames of ``frame_size`` = (W, H): a stamp drawn by its
    weight moving over a background, with distractors, occluders and the camera's effects;
    with ``crossing``, also a look-alike that passes the target (``Crossing``), its box in
    each frame's ``crosser_box``."""
    W, H = frame_size
    target_index, target, base, motion, others, background_index = _draw_cast(rng, library,
                                                                              frame_size)
    background = library.backgrounds[background_index].astype(np.float32)
    bh, bw = background.shape[:2]
    cover = max(W / bw, H / bh) * rng.uniform(1.2, 2.0)
    mx, my = W / (2 * cover), H / (2 * cover)
    pan = rng.uniform(0.2, 1.8)
    cam_x = Walk(rng, bw / 2, mx, bw - mx, step=0.5 * pan / cover)
    cam_y = Walk(rng, bh / 2, my, bh - my, step=0.5 * pan / cover)
    zoom = Walk(rng, 1.0, 0.85, 1.3, step=0.003 * rng.uniform(0.0, 1.5))

    events = []
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        duration = int(rng.integers(10, 28))
        if num_frames > duration + 2:
            start = int(rng.integers(1, num_frames - duration))
            occluder = library.mattes[int(rng.integers(len(library.mattes)))].sprite()
            events.append(Occlusion(rng, occluder, start, duration, bool(rng.random() < 0.3)))

    light_angle = rng.uniform(0, 2 * np.pi)
    shadow = (math.cos(light_angle), math.sin(light_angle), rng.uniform(0.0, 0.5))
    light = Walk(rng, 1.0, 0.55, 1.3, step=0.012 * rng.uniform(0.2, 1.5))
    tint = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    noise_sigma = rng.uniform(0.5, 6.0)
    blur_start = int(rng.integers(0, num_frames)) if rng.random() < 0.6 else -1
    blur_len, blur_angle = int(rng.integers(5, 15)), float(rng.uniform(0, 180))
    crosser = (Crossing(rng, _look_alike(rng, library, target_index), num_frames) if crossing
               else None)

    for t in range(num_frames):
        s = cover * zoom.next()
        cam = np.array([[s, 0.0, W / 2 - s * cam_x.next()], [0.0, s, H / 2 - s * cam_y.next()]])
        canvas = cv2.warpAffine(background, cam, (W, H), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        z = s / cover
        for sprite, scale, walk in others:
            blend(canvas, sprite.render(walk.matrix(sprite, scale, z)[0], (W, H)), shadow)
        m, cx, cy = motion.matrix(target, base, z)
        layer = target.render(m, (W, H))
        full_area = target.projected_area(m)
        passing = crosser.layer(t, cx, cy, full_area, (W, H)) if crosser else None
        if passing is not None and not crosser.in_front:
            blend(canvas, passing, shadow)
        blend(canvas, layer, shadow)
        box = _mask_box(layer)
        seen = layer.alpha.copy()
        if passing is not None and crosser.in_front:
            blend(canvas, passing, shadow)
            hide(seen, layer, passing)
        for event in events:
            offset = event.offset(t, 1.25 * math.sqrt(full_area) + 10)
            if offset is None or np.isnan(box[0]):
                continue
            oh, ow = event.sprite.mask.shape
            size = (1.4 if event.full else 0.7) * math.sqrt(full_area / max(1.0, oh * ow))
            om = event.sprite.matrix(cx + offset[0], cy + offset[1], size, 1.0, 0.0)
            occluding = event.sprite.render(om, (W, H))
            blend(canvas, occluding, shadow)
            hide(seen, layer, occluding)
        canvas *= light.next() * tint
        if 0 <= blur_start <= t < blur_start + 6:
            canvas = motion_blur(canvas, blur_len, blur_angle)
        canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(noise_sigma)
        yield RenderedFrame(image=np.clip(canvas, 0, 255).astype(np.uint8), box=box,
                            visible=float(seen.sum()) / max(full_area, 1e-6),
                            cut_by_image=float(layer.alpha.sum()) < 0.98 * full_area,
                            target_layer=None, target_alpha=None,
                            crosser_box=None if passing is None else _mask_box(passing))


def read_video(path: Path, max_side: int = MAX_VIDEO_SIDE) -> List[np.ndarray]:
    """All frames of a video as RGB arrays, shrunk to at most ``max_side`` pixels."""
    return [cv2.cvtColor(shrink(bgr, max_side), cv2.COLOR_BGR2RGB) for bgr in read_bgr(path)]


def _points_in(box: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """A 10 x 10 grid over the box plus the strong corners inside it, as N x 1 x 2 float32."""
    x, y, w, h = box
    gx, gy = np.meshgrid(np.linspace(x + 0.1 * w, x + 0.9 * w, 10),
                         np.linspace(y + 0.1 * h, y + 0.9 * h, 10))
    points = [np.stack([gx.ravel(), gy.ravel()], axis=1)]
    mask = np.zeros_like(grey)
    mask[int(y):int(y + h), int(x):int(x + w)] = 255
    corners = cv2.goodFeaturesToTrack(grey, 50, 0.01, 3, mask=mask)
    if corners is not None:
        points.append(corners.reshape(-1, 2))
    return np.concatenate(points).astype(np.float32).reshape(-1, 1, 2)


def follow(greys: Sequence[np.ndarray], start: int, box: np.ndarray,
           max_len: int) -> List[np.ndarray]:
    """Boxes of a patch followed from frame ``start`` (its box first) until the forward-backward
    check fails, the box leaves the frame or ``max_len`` boxes are reached."""
    H, W = greys[0].shape
    lk = dict(winSize=(15, 15), maxLevel=3,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
    boxes = [np.asarray(box, float)]
    for t in range(start, min(len(greys) - 1, start + max_len - 1)):
        b = boxes[-1]
        p0 = _points_in(b, greys[t])
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(greys[t], greys[t + 1], p0, None, **lk)
        p0b, st2, _ = cv2.calcOpticalFlowPyrLK(greys[t + 1], greys[t], p1, None, **lk)
        error = np.linalg.norm((p0 - p0b).reshape(-1, 2), axis=1)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & (error < FB_MAX_ERROR)
        if good.mean() < FB_MIN_SHARE or good.sum() < 8:
            break
        a, c = p0.reshape(-1, 2)[good], p1.reshape(-1, 2)[good]
        shift = np.median(c - a, axis=0)
        i, j = np.triu_indices(len(a), 1)
        before = np.linalg.norm(a[i] - a[j], axis=1)
        keep = before > 2
        ratio = float(np.median(np.linalg.norm(c[i] - c[j], axis=1)[keep] / before[keep])) \
            if keep.any() else 1.0
        ratio = float(np.clip(ratio, 0.9, 1.1))
        cx, cy = b[0] + b[2] / 2 + shift[0], b[1] + b[3] / 2 + shift[1]
        w, h = b[2] * ratio, b[3] * ratio
        nb = np.array([cx - w / 2, cy - h / 2, w, h])
        if nb[0] < 0 or nb[1] < 0 or nb[0] + w > W or nb[1] + h > H:
            break
        boxes.append(nb)
    return boxes


def video_tracks(rng: np.random.Generator, frames: Sequence[np.ndarray], count: int,
                 min_len: int = 12, max_len: int = 60) -> List[Tuple[int, List[np.ndarray]]]:
    """Up to ``count`` (start frame, boxes) patch tracks of at least ``min_len`` frames that
    passed the forward-backward check all along, from random textured starting boxes."""
    greys = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    H, W = greys[0].shape
    tracks = []
    for _ in range(count * 6):
        if len(tracks) >= count:
            break
        start = int(rng.integers(0, max(1, len(frames) - min_len)))
        corners = cv2.goodFeaturesToTrack(greys[start], 200, 0.02, 8)
        if corners is None:
            continue
        cx, cy = corners.reshape(-1, 2)[int(rng.integers(len(corners)))]
        side = rng.uniform(0.12, 0.35) * min(H, W)
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
        w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
        box = np.array([cx - w / 2, cy - h / 2, w, h])
        if box[0] < 0 or box[1] < 0 or box[0] + w > W or box[1] + h > H:
            continue
        if greys[start][int(box[1]):int(box[1] + h), int(box[0]):int(box[0] + w)].std() < 12:
            continue
        boxes = follow(greys, start, box, max_len)
        if len(boxes) >= min_len:
            tracks.append((start, boxes))
    return tracks


def _meta(object_class: str, motion: str, url: str, size: Tuple[int, int], frames: int) -> str:
    return ("[METAINFO]\n"
            f"url: {url}\n"
            "begin: 00:00:00\n"
            f"end: 00:00:{frames // 10:02d}\n"
            "anno_fps: 10Hz\n"
            f"object_class: {object_class}\n"
            f"motion_class: {motion}\n"
            "major_class: rendered\n"
            "root_class: object\n"
            "motion_adverb: smoothly\n"
            f"resolution: ({size[0]}, {size[1]})\n")


def _write_track(folder: Path, frames: Sequence[np.ndarray], start: int,
                 boxes: Sequence[np.ndarray], video: str, quality: int) -> None:
    records = (RenderedFrame(image=frames[start + k], box=np.round(b, 1), visible=1.0,
                             cut_by_image=False, target_layer=None, target_alpha=None)
               for k, b in enumerate(boxes))
    write_sequence(folder, records, "got10k", quality)
    h, w = frames[0].shape[:2]
    (folder / "meta_info.ini").write_text(
        _meta("video patch", "real camera and object motion", f"{video} frames {start + 1}-"
              f"{start + len(boxes)}", (w, h), len(boxes)))


def _matte_manifest(library: Library) -> dict:
    """The stamps a library draws from by name, and its cut-outs' count and share of the
    target draws."""
    cutout = library.is_cutout
    return {"stamps": sorted({m.name for m, c in zip(library.mattes, cutout) if not c}),
            "cutouts": {"count": int(cutout.sum()),
                        "share": round(float(library.weights[cutout].sum()), 6)}}


def write_manifest(folder: Path, manifest: dict) -> None:
    """``dataset.json``: what a data set was made from and with which settings."""
    (Path(folder) / "dataset.json").write_text(json.dumps(manifest, indent=2))


@dataclass(frozen=True)
class _StampJob:
    folder: Path
    seed: int
    index: int
    num_frames: int
    frame_size: Tuple[int, int]
    layout: str
    quality: int
    crossing: bool = False


_WORKER_LIBRARY: List[Library] = []


def _set_library(library: Library) -> None:
    _WORKER_LIBRARY[:] = [library]


def _init_worker(library: Library) -> None:
    fork_safe_opencv()
    _set_library(library)


def _stamp_job(job: _StampJob) -> None:
    frames = render_stamp_sequence(sequence_rng(job.seed, job.index), _WORKER_LIBRARY[0],
                                   job.num_frames, job.frame_size, job.crossing)
    write_sequence(job.folder, frames, job.layout, job.quality)
    if job.layout == "got10k":
        (job.folder / "meta_info.ini").write_text(
            _meta("matted object", "rendered motion", "rbsf.data.render", job.frame_size,
                  job.num_frames))


def _run_stamp_jobs(jobs: List[_StampJob], library: Library, workers: int, progress: bool) -> None:
    with tqdm(total=len(jobs), desc="rendering", unit="seq", disable=not progress) as bar:
        if workers <= 1:
            _set_library(library)
            for job in jobs:
                _stamp_job(job)
                bar.update(1)
            return
        with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(library,)) as pool:
            for _ in pool.imap_unordered(_stamp_job, jobs):
                bar.update(1)


def write_real_dataset(out: Path, library: Library, videos: Dict[str, Sequence[np.ndarray]],
                       stamp_sequences: int, tracks_per_video: int, num_frames: int, seed: int,
                       frame_size: Tuple[int, int] = (480, 360), quality: int = JPEG_QUALITY,
                       workers: int = 1, progress: bool = False,
                       reserved_splits: Sequence[str] = ()) -> Path:
    """The GOT-10k-layout training set ``out/train/``: ``stamp_sequences`` stamp sequences of
    ``num_frames`` frames, then up to ``tracks_per_video`` real-motion tracks of each video.
    ``reserved_splits`` (source splits the library leaves out) is recorded in the manifest.
    Complete or absent: built in a temporary folder and renamed."""
    if stamp_sequences < 0 or tracks_per_video < 0 or stamp_sequences + tracks_per_video == 0:
        raise RenderError("ask for at least one stamp sequence or one video track")
    with atomic_dir(out) as building:
        train = building / "train"
        train.mkdir()
        names = [f"GOT-10k_Train_{i + 1:06d}" for i in range(stamp_sequences)]
        jobs = [_StampJob(train / n, seed, i, num_frames, frame_size, "got10k", quality)
                for i, n in enumerate(names)]
        _run_stamp_jobs(jobs, library, workers, progress)
        counts = {"stamp sequences": stamp_sequences}
        for k, (video, frames) in enumerate(sorted(videos.items())):
            rng = np.random.default_rng([seed, 2, k])
            tracks = video_tracks(rng, frames, tracks_per_video, max_len=num_frames)
            for start, boxes in tracks:
                name = f"GOT-10k_Train_{len(names) + 1:06d}"
                _write_track(train / name, frames, start, boxes, video, quality)
                names.append(name)
            counts[f"tracks of {video}"] = len(tracks)
        (train / "list.txt").write_text("\n".join(names) + "\n")
        write_manifest(building, {"kind": "rbsf.data.render training set", "seed": seed,
                                  "frame_size": list(frame_size), "frames": num_frames,
                                  "sequences": counts,
                                  "reserved_splits": list(reserved_splits),
                                  **_matte_manifest(library)})
    return Path(out)


def write_rendered_otb(out: Path, library: Library, sequences: int, num_frames: int,
                       seed: int, frame_size: Tuple[int, int] = (480, 360),
                       quality: int = JPEG_QUALITY, workers: int = 1, progress: bool = False,
                       split: str = "held-out", crossing: bool = False) -> Path:
    """OTB-layout rendered sequences ``out/Heldout0001/img/0001.jpg`` + ``groundtruth_rect.txt``
    (``rbsf.data.load_sequences`` and ``tools/eval.py --dataset custom --root out`` read it).
    ``split`` "held-out": pass a library of held-out stamps and backgrounds only; "tuning"
    (folders ``Tune0001``...): the tuning split only, for choosing settings and weights on
    sources that a run reserving them never saw; "validation" (``Val0001``...): the training
    library, new sequences drawn from the training sources. With ``crossing``, a look-alike
    passes the target in every sequence (``Crossing``; its boxes in ``crosser_rect.txt``, which
    ``rbsf.eval.crossings`` scores). ``dataset.json`` names each sequence's target stamp
    (``targets``) and background (``backgrounds``), so that scores can be grouped by object
    and by scene. Complete or absent."""
    if split not in RENDERED_SPLITS:
        raise RenderError(f"unknown split {split!r}; choose from {', '.join(RENDERED_SPLITS)}")
    names = [f"{RENDERED_SPLITS[split]}{i + 1:04d}" for i in range(sequences)]
    with atomic_dir(out) as building:
        jobs = [_StampJob(building / name, seed, i, num_frames, frame_size, "otb", quality,
                          crossing) for i, name in enumerate(names)]
        _run_stamp_jobs(jobs, library, workers, progress)
        targets, backgrounds = zip(*(sequence_cast_names(library, seed, i, frame_size)
                                     for i in range(sequences)))
        write_manifest(building, {"kind": f"rbsf.data.render {split} set", "seed": seed,
                                  "frame_size": list(frame_size), "frames": num_frames,
                                  "sequences": sequences, "crossing": crossing,
                                  "stamps": sorted({m.name for m in library.mattes}),
                                  "targets": dict(zip(names, targets)),
                                  "backgrounds": dict(zip(names, backgrounds))})
    return Path(out)
