"""Synthetic tracking sequences rendered from real photographs, written in benchmark layouts.

A target cut from one photo (rectangle, ellipse or irregular blob; random size and aspect) moves
over another photo seen through a panning, zooming camera. The target follows smooth random
motion with scale, aspect and in-plane rotation changes; look-alike distractors (the same
texture, recoloured) wander behind it; occluders cut from a third photo sweep over it, partially
or fully; global illumination drift, camera-shake motion blur, sensor noise and JPEG compression
finish each frame. Ground truth is exact: the box is the tight box of the rendered target mask
inside the frame, and the visible share of the target (occluders and frame border accounted
for) gives the absence / cover / cut-by-image labels.

Layouts (``write_dataset``):
  got10k  ROOT/{train,val,test}/list.txt and GOT-10k_<Subset>_NNNNNN/ with 00000001.jpg...,
          groundtruth.txt (test: first line only), absence.label, cover.label,
          cut_by_image.label, meta_info.ini; ``num_sequences`` sequences in each subset.
  otb     ROOT/<Name>/img/0001.jpg... + groundtruth_rect.txt, names taken from OTB100.
  uav123  ROOT/anno/UAV123/<name>.txt + ROOT/data_seq/UAV123/<name>/000001.jpg..., named after
          the shortest UAV123 sequences, each exactly as long as the got10k toolkit expects
          (109 to a few hundred frames: ``num_frames`` does not apply); absent frames are NaN.

A data set is written whole or not at all (``rbsf.files.atomic_dir``): Ctrl-C or a kill while
writing leaves no partial folder that could later pass for a data set.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence as Seq, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from rbsf.crops import to_rgb_array
from rbsf.devices import fork_safe_opencv
from rbsf.errors import RBSFError
from rbsf.files import atomic_dir

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "data" / "photos"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
LAYOUTS = ("got10k", "otb", "uav123")
ABSENT_BELOW = 0.03          # visible share under which a frame counts as absent
JPEG_QUALITY = 90
CROSSER_FILE = "crosser_rect.txt"   # boxes of a look-alike that passes the target, one per frame

# OTB100 names whose frames the got10k toolkit does not trim and that have one groundtruth file.
OTB_NAMES = [
    "Basketball", "Biker", "Bird1", "BlurBody", "BlurCar2", "BlurFace", "BlurOwl", "Bolt", "Box",
    "Car1", "Car4", "CarDark", "CarScale", "ClifBar", "Couple", "Crowds", "Deer", "DragonBaby",
    "Dudek", "Football", "Girl", "Human3", "Human4", "Human6", "Human9", "Ironman", "Jump",
    "Jumping", "Liquor", "Matrix", "MotorRolling", "Panda", "RedTeam", "Shaking", "Singer2",
    "Skating1", "Skiing", "Soccer", "Surfer", "Sylvester", "Tiger2", "Trellis", "Walking",
    "Walking2", "Woman", "Bird2", "BlurCar1", "BlurCar3", "BlurCar4", "Board", "Bolt2", "Boy",
    "Car2", "Car24", "Coke", "Coupon", "Crossing", "Dancer", "Dancer2", "David2", "David3", "Dog",
    "Dog1", "Doll", "FaceOcc1", "FaceOcc2", "Fish", "FleetFace", "Freeman1", "Girl2", "Gym",
    "Human2", "Human5", "Human7", "Human8", "KiteSurf", "Lemming", "Man", "Mhyang",
    "MountainBike", "Rubik", "Singer1", "Skater", "Skater2", "Subway", "Suv", "Tiger1", "Toy",
    "Trans", "Twinnings", "Vase",
]


class SyntheticDataError(RBSFError, ValueError):
    """A request the generator cannot fulfil (bad option, missing photos); says what to change."""


@dataclass
class RenderedFrame:
    """One rendered frame and its exact ground truth.

    ``target_layer`` / ``target_alpha`` are the target as drawn into the frame (before occluders
    and global effects); ``visible`` is the share of the whole target that is seen.
    """

    image: np.ndarray            # H x W x 3 uint8 RGB
    box: np.ndarray              # x, y, w, h (tight box of the in-frame target mask)
    visible: float               # 0..1
    cut_by_image: bool
    target_layer: np.ndarray     # H x W x 3 uint8 RGB, the warped target texture
    target_alpha: np.ndarray     # H x W float32 in 0..1
    crosser_box: Optional[np.ndarray] = None   # a passing look-alike's box (NaN: out of view)

    @property
    def absent(self) -> bool:
        return self.visible < ABSENT_BELOW

    @property
    def cover(self) -> int:
        """GOT-10k cover level: 0 = fully hidden, 8 = fully visible, 1..7 in between."""
        if self.absent:
            return 0
        if self.visible >= 0.99:
            return 8
        return 1 + min(6, int(self.visible * 7))


def list_photos(image_dir: Optional[str] = None,
                image_names: Optional[Seq[str]] = None) -> List[Path]:
    """Photo files of ``image_dir`` (default: the shipped ``data/photos``), optionally a subset."""
    folder = Path(image_dir) if image_dir else DEFAULT_PHOTOS
    if not folder.is_dir():
        raise SyntheticDataError(f"photo folder {folder} does not exist: pass a folder of "
                                 f".jpg/.png photos")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if image_names is not None:
        wanted = set(image_names)
        missing = wanted - {p.name for p in photos}
        if missing:
            raise SyntheticDataError(f"photos not found in {folder}: {', '.join(sorted(missing))}")
        photos = [p for p in photos if p.name in wanted]
    if len(photos) < 2:
        raise SyntheticDataError(f"need at least 2 photos in {folder} (found {len(photos)})")
    return photos


def load_photos(paths: Seq[Path]) -> List[np.ndarray]:
    """Photos as RGB uint8 arrays."""
    images = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SyntheticDataError(f"cannot read photo {path}")
        images.append(to_rgb_array(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return images


class Walk:
    """Smooth bounded random walk: damped velocity driven by Gaussian noise, reflected at bounds."""

    def __init__(self, rng: np.random.Generator, value: float, low: float, high: float,
                 step: float, damping: float = 0.9):
        self.rng, self.value, self.low, self.high = rng, value, low, high
        self.step, self.damping, self.velocity = step, damping, 0.0

    def next(self) -> float:
        self.velocity = self.damping * self.velocity + self.rng.normal(0.0, self.step)
        self.value += self.velocity
        if self.value < self.low or self.value > self.high:
            self.value = float(np.clip(self.value, self.low, self.high))
            self.velocity = -self.velocity
        return self.value


def _shape_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A float mask of one of several target shapes filling an h x w patch."""
    mask = np.zeros((h, w), np.uint8)
    kind = rng.choice(["rect", "ellipse", "blob", "rounded"])
    if kind == "rect":
        mask[:] = 1
    elif kind == "ellipse":
        cv2.ellipse(mask, (w // 2, h // 2), (max(1, w // 2 - 1), max(1, h // 2 - 1)),
                    0, 0, 360, 1, -1)
    elif kind == "rounded":
        r = max(1, int(min(h, w) * 0.25))
        cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 1, -1)
        cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 1, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(mask, (cx, cy), r, 1, -1)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = rng.uniform(0.65, 1.0, 9)
        pts = np.stack([w / 2 + (w / 2 - 1) * radii * np.cos(angles),
                        h / 2 + (h / 2 - 1) * radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(np.float32)


def _textured_patch(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """The most textured of a few random h x w windows of ``photo`` (resized when too small)."""
    ph, pw = photo.shape[:2]
    if h > ph or w > pw:
        f = min(ph / h, pw / w) * 0.95
        h, w = max(4, int(h * f)), max(4, int(w * f))
    best, best_std = None, -1.0
    for _ in range(4):
        y = int(rng.integers(0, ph - h + 1))
        x = int(rng.integers(0, pw - w + 1))
        patch = photo[y:y + h, x:x + w]
        std = float(patch.std())
        if std > best_std:
            best, best_std = patch, std
    return np.ascontiguousarray(best)


class Sprite:
    """A textured, masked patch placed in the frame by centre, scale, aspect and rotation."""

    def __init__(self, texture: np.ndarray, mask: np.ndarray):
        self.texture = texture.astype(np.float32)
        self.mask = cv2.GaussianBlur(mask, (0, 0), 0.8)     # soft edges, as a lens draws them

    def matrix(self, cx: float, cy: float, scale: float, aspect: float,
               angle_deg: float) -> np.ndarray:
        """2 x 3 affine map from patch to frame pixels (aspect stretches width over height)."""
        h, w = self.mask.shape
        sx, sy = scale * math.sqrt(aspect), scale / math.sqrt(aspect)
        a = math.radians(angle_deg)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        lin = rot @ np.diag([sx, sy])
        centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
        offset = np.array([cx, cy]) - lin @ centre
        return np.hstack([lin, offset[:, None]])

    def _warp(self, matrix: np.ndarray, x0: int, y0: int,
              w: int, h: int) -> Tuple[np.ndarray, np.ndarray]:
        shifted = matrix.copy()
        shifted[:, 2] -= (x0, y0)
        tex = cv2.warpAffine(self.texture, shifted, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(self.mask, shifted, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return tex, alpha

    def _corners(self, matrix: np.ndarray) -> np.ndarray:
        h, w = self.mask.shape
        return (np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
                @ matrix.T)

    def render(self, matrix: np.ndarray, size: Tuple[int, int]) -> "_Layer":
        """The sprite warped into a frame of ``size`` = (W, H), as a layer over its own region
        (with a margin for its shadow)."""
        corners = self._corners(matrix)
        low, high = corners.min(axis=0), corners.max(axis=0)
        pad = 0.4 * math.sqrt(max(1.0, float(np.prod(high - low)))) + 3
        x0, y0 = (int(max(0, math.floor(v - pad))) for v in low)
        x1 = int(min(size[0], math.ceil(high[0] + pad)))
        y1 = int(min(size[1], math.ceil(high[1] + pad)))
        if x1 <= x0 or y1 <= y0:
            return _Layer(np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), 0, 0)
        return _Layer(*self._warp(matrix, x0, y0, x1 - x0, y1 - y0), x0, y0)

    def projected_area(self, matrix: np.ndarray) -> float:
        """Alpha sum of the whole warped sprite, as ``render`` draws it on an unbounded frame."""
        corners = self._corners(matrix)
        low = np.floor(corners.min(axis=0)) - 2
        size = np.ceil(corners.max(axis=0) - low).astype(int) + 3
        return float(self._warp(matrix, int(low[0]), int(low[1]), int(size[0]),
                                int(size[1]))[1].sum())


@dataclass
class _Layer:
    """A rendered sprite: texture and alpha over the frame region starting at (x0, y0)."""

    tex: np.ndarray
    alpha: np.ndarray
    x0: int
    y0: int

    @property
    def region(self) -> Tuple[slice, slice]:
        h, w = self.alpha.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    def paste(self, frame_shape: Tuple[int, ...], values: np.ndarray) -> np.ndarray:
        """``values`` (shaped like this layer) placed in a zero frame of ``frame_shape``."""
        full = np.zeros(frame_shape, values.dtype)
        full[self.region] = values
        return full


def blend(canvas: np.ndarray, layer: _Layer, shadow: Tuple[float, float, float]) -> None:
    """Draw a layer over ``canvas``, after its soft drop shadow (direction x, y and strength)."""
    if layer.alpha.size == 0:
        return
    region = canvas[layer.region]
    dx, dy, strength = shadow
    reach = 0.15 * math.sqrt(float(layer.alpha.sum()))
    if strength > 0 and reach > 0.5:
        shift = np.array([[1.0, 0.0, dx * reach], [0.0, 1.0, dy * reach]])
        dark = cv2.warpAffine(layer.alpha, shift, layer.alpha.shape[::-1],
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        dark = cv2.GaussianBlur(dark, (0, 0), 0.5 * reach)
        region *= (1.0 - strength * dark)[..., None]
    a = layer.alpha[..., None]
    region *= 1.0 - a
    region += layer.tex * a


def hide(seen: np.ndarray, target: _Layer, occluder: _Layer) -> None:
    """Multiply the target's visibility map ``seen`` by the transparency of ``occluder``."""
    ty, tx = target.region
    oy, ox = occluder.region
    y0, y1 = max(ty.start, oy.start), min(ty.stop, oy.stop)
    x0, x1 = max(tx.start, ox.start), min(tx.stop, ox.stop)
    if y1 > y0 and x1 > x0:
        seen[y0 - ty.start:y1 - ty.start, x0 - tx.start:x1 - tx.start] *= \
            1.0 - occluder.alpha[y0 - oy.start:y1 - oy.start, x0 - ox.start:x1 - ox.start]


def motion_blur(image: np.ndarray, length: int, angle: float) -> np.ndarray:
    """``image`` blurred along a line of ``length`` pixels at ``angle`` degrees."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2.0, (length - 1) / 2.0), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


class Occlusion:
    """An occluder sweeping across the target over ``duration`` frames from ``start``."""

    def __init__(self, rng: np.random.Generator, sprite: Sprite, start: int, duration: int,
                 full: bool):
        self.sprite, self.start, self.duration, self.full = sprite, start, duration, full
        angle = rng.uniform(0, 2 * np.pi)
        self.direction = np.array([math.cos(angle), math.sin(angle)])
        self.hold = 0.4 if full else 0.0        # share of the event spent right over the target

    def offset(self, t: int, reach: float) -> Optional[np.ndarray]:
        """Occluder centre relative to the target centre at frame t, or None outside the event."""
        u = (t - self.start) / max(1, self.duration - 1)
        if not 0.0 <= u <= 1.0:
            return None
        travel = (1.0 - self.hold) / 2.0
        if u < travel:
            s = -1.0 + u / travel
        elif u > 1.0 - travel:
            s = (u - (1.0 - travel)) / travel
        else:
            s = 0.0
        return self.direction * s * reach


def sequence_rng(seed: int, subset_index: int, sequence_index: int) -> np.random.Generator:
    """The random generator ``write_dataset`` renders sequence ``sequence_index`` of a subset with
    (subset index: 0 train / 1 val / 2 test for got10k, 0 otherwise)."""
    return np.random.default_rng([seed, subset_index, sequence_index])


def render_sequence(rng: np.random.Generator, photos: Seq[np.ndarray], num_frames: int,
                    frame_size: Tuple[int, int] = (480, 360)) -> Iterator[RenderedFrame]:
    """Render one sequence of ``num_frames`` frames of ``frame_size`` = (W, H) from ``photos``."""
    W, H = frame_size
    order = rng.permutation(len(photos))
    target_photo = photos[order[0]]
    background = photos[order[1]].astype(np.float32)
    occluder_photo = photos[order[2 % len(order)]]

    # target: a textured cut of random size, aspect and shape
    src_side = int(rng.uniform(48, 140))
    src_aspect = math.exp(rng.uniform(math.log(0.4), math.log(2.5)))
    tex = _textured_patch(rng, target_photo, max(8, int(src_side / math.sqrt(src_aspect))),
                          max(8, int(src_side * math.sqrt(src_aspect))))
    target = Sprite(tex, _shape_mask(rng, *tex.shape[:2]))
    th, tw = tex.shape[:2]
    side_frac = rng.uniform(0.12, 0.38)                # initial target size / frame height
    base_scale = side_frac * H / max(th, tw)

    # camera over the background photo
    bh, bw = background.shape[:2]
    cover_scale = max(W / bw, H / bh) * 1.35
    margin_x, margin_y = W / (2 * cover_scale), H / (2 * cover_scale)
    cam_x = Walk(rng, bw / 2, margin_x, bw - margin_x,
                 step=0.4 / cover_scale * rng.uniform(0.2, 1.5))
    cam_y = Walk(rng, bh / 2, margin_y, bh - margin_y,
                 step=0.4 / cover_scale * rng.uniform(0.2, 1.5))
    zoom = Walk(rng, 1.0, 1.0, 1.3, step=0.002 * rng.uniform(0.0, 1.5))

    def walks(scale_step: float) -> List[Walk]:
        return [Walk(rng, rng.uniform(0.3, 0.7) * W, 0.12 * W, 0.88 * W, step=0.004 * W),
                Walk(rng, rng.uniform(0.3, 0.7) * H, 0.12 * H, 0.88 * H, step=0.004 * H),
                Walk(rng, 0.0, -0.45, 0.45, step=scale_step),
                Walk(rng, 0.0, -0.2, 0.2, step=0.004),
                Walk(rng, 0.0, -25.0, 25.0, step=rng.choice([0.0, 0.3, 0.8]))]

    target_walk = walks(0.006)

    # look-alike distractors: same texture and shape, recoloured, slightly resized
    distractors = []
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        gain = rng.uniform(0.8, 1.2, 3).astype(np.float32)
        sprite = Sprite(np.clip(tex * gain, 0, 255), target.mask)
        distractors.append((sprite, rng.uniform(0.8, 1.2) * base_scale, walks(0.004)))

    # occlusion events, partial and full
    events = []
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        full = bool(rng.random() < 0.5)
        duration = int(rng.integers(12, 30))
        if num_frames <= duration + 2:
            continue
        start = int(rng.integers(1, num_frames - duration))
        occ_tex = _textured_patch(rng, occluder_photo, int(rng.uniform(40, 120)),
                                  int(rng.uniform(40, 120)))
        mask = (np.ones(occ_tex.shape[:2], np.float32) if full
                else _shape_mask(rng, *occ_tex.shape[:2]))
        events.append(Occlusion(rng, Sprite(occ_tex, mask), start, duration, full))

    light_angle = rng.uniform(0, 2 * np.pi)
    shadow = (math.cos(light_angle), math.sin(light_angle), rng.uniform(0.0, 0.5))
    light = Walk(rng, 1.0, 0.65, 1.25, step=0.01 * rng.uniform(0.2, 1.5))
    ramp_strength = rng.uniform(0.0, 0.4)
    ramp = np.linspace(1.0 - ramp_strength / 2, 1.0 + ramp_strength / 2, W,
                       dtype=np.float32)[None, :, None]
    noise_sigma = rng.uniform(1.0, 5.0)
    blur_start = int(rng.integers(0, max(1, num_frames))) if rng.random() < 0.6 else -1
    blur_len, blur_angle = int(rng.integers(5, 14)), float(rng.uniform(0, 180))

    for t in range(num_frames):
        z = zoom.next()
        s = cover_scale * z
        cam = np.array([[s, 0.0, W / 2 - s * cam_x.next()], [0.0, s, H / 2 - s * cam_y.next()]])
        canvas = cv2.warpAffine(background, cam, (W, H), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)

        for sprite, scale, (wx, wy, ws, wa, wr) in distractors:
            m = sprite.matrix(wx.next(), wy.next(), scale * z * math.exp(ws.next()),
                              math.exp(wa.next()), wr.next())
            blend(canvas, sprite.render(m, (W, H)), shadow)

        cx, cy = target_walk[0].next(), target_walk[1].next()
        scale = base_scale * z * math.exp(target_walk[2].next())
        m = target.matrix(cx, cy, scale, math.exp(target_walk[3].next()), target_walk[4].next())
        layer = target.render(m, (W, H))
        blend(canvas, layer, shadow)
        full_area = target.projected_area(m)
        ys, xs = np.nonzero(layer.alpha > 0.5)

        seen = layer.alpha.copy()
        reach = 1.25 * math.sqrt(full_area) + 10       # occluders enter and leave from this far
        for event in events:
            off = event.offset(t, reach)
            if off is None or len(xs) == 0:
                continue
            tbw, tbh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
            oh, ow = event.sprite.mask.shape
            cover = 1.5 if event.full else 0.6
            sx, sy = cover * tbw / ow, cover * tbh / oh
            om = event.sprite.matrix(cx + off[0], cy + off[1], math.sqrt(sx * sy), sx / sy, 0.0)
            occluder = event.sprite.render(om, (W, H))
            blend(canvas, occluder, shadow)
            hide(seen, layer, occluder)

        canvas *= light.next() * ramp
        if blur_start >= 0 and blur_start <= t < blur_start + 8:
            canvas = motion_blur(canvas, blur_len, blur_angle)
        canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(noise_sigma)
        image = np.clip(canvas, 0, 255).astype(np.uint8)

        if len(xs):
            box = np.array([xs.min() + layer.x0, ys.min() + layer.y0,
                            xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], float)
        else:
            box = np.array([np.nan] * 4)
        yield RenderedFrame(image=image, box=box,
                            visible=float(seen.sum()) / max(full_area, 1e-6),
                            cut_by_image=float(layer.alpha.sum()) < 0.98 * full_area,
                            target_layer=layer.paste((H, W, 3),
                                                     np.clip(layer.tex, 0, 255).astype(np.uint8)),
                            target_alpha=layer.paste((H, W), layer.alpha))


def _write_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    ok = cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"cannot write {path}")


def _box_lines(boxes: Seq[np.ndarray], sep: str = ",") -> str:
    lines = []
    for b in boxes:
        if np.any(np.isnan(b)):
            lines.append(sep.join(["NaN"] * 4))
        else:
            lines.append(sep.join(f"{v:.0f}" for v in b))
    return "\n".join(lines) + "\n"


def _fill_missing(boxes: Seq[np.ndarray]) -> List[np.ndarray]:
    """Boxes with frames where the target left the frame entirely given the last known box."""
    last = next((b for b in boxes if not np.any(np.isnan(b))), np.zeros(4))
    filled = []
    for b in boxes:
        last = b if not np.any(np.isnan(b)) else last
        filled.append(last)
    return filled


def write_sequence(folder: Path, frames: Iterator[RenderedFrame], layout: str, quality: int,
                   first_only: bool = False) -> List[RenderedFrame]:
    """Write the frames and labels of one sequence into ``folder``; returns the frame records.
    Frames with a ``crosser_box`` also write the passing look-alike's boxes (``CROSSER_FILE``,
    NaN where it is out of view)."""
    img_dir = folder / "img" if layout == "otb" else folder
    img_dir.mkdir(parents=True, exist_ok=True)
    digits = {"got10k": 8, "otb": 4, "uav123": 6}[layout]
    records = []
    for i, frame in enumerate(frames, start=1):
        _write_jpeg(img_dir / f"{i:0{digits}d}.jpg", frame.image, quality)
        frame.image = frame.target_layer = frame.target_alpha = None   # keep memory flat
        records.append(frame)
    boxes = _fill_missing([r.box for r in records])
    if records and records[0].crosser_box is not None:
        (folder / CROSSER_FILE).write_text(_box_lines([r.crosser_box for r in records]))
    if layout == "otb":
        # OTB annotates the target's position even while it is hidden.
        (folder / "groundtruth_rect.txt").write_text(_box_lines(boxes))
    elif layout == "got10k":
        (folder / "groundtruth.txt").write_text(_box_lines(boxes[:1] if first_only else boxes))
        if not first_only:
            (folder / "absence.label").write_text("".join(f"{int(r.absent)}\n" for r in records))
            (folder / "cover.label").write_text("".join(f"{r.cover}\n" for r in records))
            (folder / "cut_by_image.label").write_text("".join(f"{int(r.cut_by_image)}\n"
                                                               for r in records))
    return records


def _meta_info(frame_size: Tuple[int, int], num_frames: int) -> str:
    return ("[METAINFO]\n"
            "url: synthetic\n"
            "begin: 00:00:00\n"
            f"end: 00:00:{num_frames // 10:02d}\n"
            "anno_fps: 10Hz\n"
            "object_class: synthetic object\n"
            "motion_class: random smooth motion\n"
            "major_class: synthetic\n"
            "root_class: object\n"
            "motion_adverb: smoothly\n"
            f"resolution: ({frame_size[0]}, {frame_size[1]})\n")


def _uav123_names(count: int) -> List[Tuple[str, int]]:
    """The ``count`` shortest UAV123 sequences with their own folder, as (name, length)."""
    import got10k.datasets  # the toolkit ships the frame ranges its UAV123 loader expects
    meta_file = Path(got10k.datasets.__file__).parent / "uav123.json"
    metas = json.loads(meta_file.read_text())["UAV123"]
    own = [(m["end_frame"] - m["start_frame"] + 1, name) for name, m in metas.items()
           if m["folder_name"] == name and m["start_frame"] == 1]
    own.sort()
    if count > len(own):
        raise SyntheticDataError(f"the uav123 layout holds at most {len(own)} sequences")
    return [(name, length) for length, name in own[:count]]


GOT10K_SUBSETS = ("train", "val", "test")


@dataclass(frozen=True)
class _SequenceJob:
    """One sequence to render and write: everything a worker process needs."""

    subset_index: int
    index: int
    folder: Path
    num_frames: int
    first_only: bool
    layout: str
    seed: int
    frame_size: Tuple[int, int]
    quality: int


_WORKER_PHOTOS: List[np.ndarray] = []


def _set_worker_photos(photos: List[np.ndarray]) -> None:
    _WORKER_PHOTOS[:] = photos


def _init_worker(photos: List[np.ndarray]) -> None:
    """Pool worker set-up: the photos, OpenCV off its thread pool, and Ctrl-C left to the parent
    (which stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fork_safe_opencv()
    _set_worker_photos(photos)


def _write_job(job: _SequenceJob) -> None:
    """Render one sequence and write its frames, labels and per-sequence files."""
    frames = render_sequence(sequence_rng(job.seed, job.subset_index, job.index), _WORKER_PHOTOS,
                             job.num_frames, job.frame_size)
    records = write_sequence(job.folder, frames, job.layout, job.quality, job.first_only)
    if job.layout == "got10k":
        (job.folder / "meta_info.ini").write_text(_meta_info(job.frame_size, job.num_frames))
    elif job.layout == "uav123":
        # UAV123 marks frames without a visible target with NaN boxes
        boxes = [np.full(4, np.nan) if r.absent else r.box for r in records]
        anno = job.folder.parents[2] / "anno" / "UAV123" / f"{job.folder.name}.txt"
        anno.write_text(_box_lines(boxes))


def _check_request(layout: str, num_sequences: int, num_frames: int, seed: int,
                   frame_size: Tuple[int, int], quality: int, subsets: Seq[str],
                   workers: int) -> None:
    """``SyntheticDataError`` for any value ``write_dataset`` cannot use."""
    if layout not in LAYOUTS:
        raise SyntheticDataError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if num_sequences < 1 or num_frames < 2:
        raise SyntheticDataError(f"need at least 1 sequence of at least 2 frames, got "
                                 f"{num_sequences} sequence(s) of {num_frames} frame(s)")
    if seed < 0:
        raise SyntheticDataError(f"the seed must be an integer >= 0, got {seed}")
    if frame_size[0] < 32 or frame_size[1] < 32:
        raise SyntheticDataError(f"frame size {frame_size[0]}x{frame_size[1]} too small: at "
                                 f"least 32 x 32")
    if not 1 <= quality <= 100:
        raise SyntheticDataError(f"JPEG quality must be within 1..100, got {quality}")
    unknown = sorted(set(subsets) - set(GOT10K_SUBSETS))
    if layout == "got10k" and (unknown or not subsets):
        raise SyntheticDataError(f"GOT-10k subsets must be among {', '.join(GOT10K_SUBSETS)}, "
                                 f"got {', '.join(subsets) or 'none'}")
    if workers < 1:
        raise SyntheticDataError(f"workers must be at least 1, got {workers}")


def write_dataset(out_dir: str, layout: str, num_sequences: int, num_frames: int, seed: int,
                  image_dir: Optional[str] = None, frame_size: Tuple[int, int] = (480, 360),
                  image_names: Optional[List[str]] = None, quality: int = JPEG_QUALITY,
                  progress: bool = False, subsets: Seq[str] = GOT10K_SUBSETS,
                  workers: int = 1) -> Path:
    """Write a synthetic dataset in ``layout`` ("got10k", "otb" or "uav123") and return its root.

    ``out_dir`` must be new or empty; it is written whole or not at all (built in a hidden
    sibling folder and renamed at the end). ``image_names`` restricts the photos used (file
    names in ``image_dir``), so training and held-out sets can use disjoint photos. ``subsets``
    picks the GOT-10k subsets to write (a subset's sequences do not depend on which others are
    written). ``workers`` processes render sequences in parallel. The same arguments always
    write the same dataset, whatever ``workers`` is. Bad values raise ``SyntheticDataError``
    before anything is written.
    """
    frame_size = (int(frame_size[0]), int(frame_size[1]))
    _check_request(layout, num_sequences, num_frames, seed, frame_size, quality, subsets, workers)
    root = Path(out_dir)
    photo_paths = list_photos(image_dir, image_names)
    uav_names = _uav123_names(num_sequences) if layout == "uav123" else []

    def job(subset_index: int, index: int, folder: Path, frames: int, first_only: bool = False):
        return _SequenceJob(subset_index, index, folder, frames, first_only, layout, seed,
                            frame_size, quality)

    with atomic_dir(root) as building:
        jobs = []
        if layout == "got10k":
            for subset in subsets:
                k = GOT10K_SUBSETS.index(subset)
                names = [f"GOT-10k_{subset.capitalize()}_{i + 1:06d}" for i in range(num_sequences)]
                (building / subset).mkdir(parents=True, exist_ok=True)
                (building / subset / "list.txt").write_text("\n".join(names) + "\n")
                jobs += [job(k, i, building / subset / n, num_frames, subset == "test")
                         for i, n in enumerate(names)]
        elif layout == "otb":
            names = OTB_NAMES[:num_sequences] + [f"Synthetic{i:04d}"
                                                 for i in range(len(OTB_NAMES), num_sequences)]
            jobs = [job(0, i, building / n, num_frames) for i, n in enumerate(names)]
        else:
            for i, (name, length) in enumerate(uav_names):
                jobs.append(job(0, i, building / "data_seq" / "UAV123" / name, length))
            (building / "anno" / "UAV123").mkdir(parents=True, exist_ok=True)

        photos = load_photos(photo_paths)
        bar = tqdm(total=len(jobs), desc=f"writing {layout}", unit="seq", disable=not progress)
        with bar:
            if workers == 1:
                _set_worker_photos(photos)
                for item in jobs:
                    _write_job(item)
                    bar.update(1)
            else:
                with multiprocessing.Pool(min(workers, len(jobs)), initializer=_init_worker,
                                          initargs=(photos,)) as pool:
                    for _ in pool.imap_unordered(_write_job, jobs):
                        bar.update(1)

        if layout == "uav123":
            (building / "README.txt").write_text(
                f"Synthetic sequences in the UAV123 layout (rbsf.data.synthetic, seed {seed}).\n")
            (building / "generator.json").write_text(json.dumps(
                {"seed": seed, "frame_size": list(frame_size),
                 "photos": [p.name for p in photo_paths]}))
    return root
