"""Labelled image sets in their official layouts, and the training view the trainer reads.

Readers (``load_split``), each failing with one ``DatasetError`` line that names the file or
folder and what it should hold:

* ``mnist``: the four idx files of MNIST in one folder, ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
  plain or gzipped (``.gz``), as published; the shipped ``data/mnist`` is such a folder.
* ``cifar10``: the python-pickle release, ``cifar-10-batches-py/`` with ``data_batch_1`` ..
  ``data_batch_5``, ``test_batch`` and ``batches.meta``; ``cifar100``: ``cifar-100-python/``
  with ``train``, ``test`` and ``meta`` (the fine labels). The root may be that folder or the
  folder holding it. These are Python pickles: only read files you trust.
* ``imagenet``: class folders ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (the usual
  layout after sorting the validation images into folders); the classes are the training
  folders, sorted, and every validation folder must be one of them. Images are decoded when
  read, their shorter side resized to ``load_size`` and centre-cropped square.

Splits are ``train`` and ``test`` (ImageNet's ``val`` is its test split).

``ClassificationSet`` is what the trainer iterates: per epoch a seeded permutation of the
images, each item augmented (random crop after zero padding, horizontal flip) by a generator
seeded by (seed, epoch, index), so an item never depends on the worker that reads it or on a
resume, and normalised by the data set's channel mean and std.
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from rbsf.data.sequences import DatasetError

DATASETS = ("mnist", "cifar10", "cifar100", "imagenet")
# the data set each name reads when no root is given: the repository's shipped real digits
SHIPPED_ROOTS = {"mnist": str(Path(__file__).resolve().parents[2] / "data" / "mnist")}
SPLITS = ("train", "test")
# channel mean and std of each data set's training images (0-1 scale), the usual constants
NORMALIZATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CIFAR_LAYOUT = {  # folder, training files, test file, meta file, label key, names key
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                "batches.meta", b"labels", b"label_names"),
    "cifar100": ("cifar-100-python", ["train"], "test", "meta", b"fine_labels",
                 b"fine_label_names"),
}


@dataclass
class ImageSet:
    """One split of a labelled image set: ``image(i)`` is an H x W x C uint8 array."""

    name: str
    split: str
    labels: np.ndarray
    classes: List[str]
    channels: int
    arrays: Optional[np.ndarray] = None          # N x H x W x C, for sets held in memory
    paths: List[Path] = field(default_factory=list)   # image files, for sets read from disk
    load_size: int = 0
    root: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> np.ndarray:
        if self.arrays is not None:
            return self.arrays[index]
        return _read_image(self.paths[index], self.load_size)

    def subset(self, indices: Sequence[int]) -> "ImageSet":
        """The images at ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return ImageSet(self.name, self.split, self.labels[indices], self.classes, self.channels,
                        self.arrays[indices] if self.arrays is not None else None,
                        [self.paths[i] for i in indices] if self.paths else [],
                        self.load_size, self.root)

    def digest(self) -> str:
        """A hash of the labels and of the pixels (or, for sets on disk, the file names and
        sizes), in order."""
        digest = hashlib.sha256(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        if self.arrays is not None:
            digest.update(np.ascontiguousarray(self.arrays).tobytes())
        for path in self.paths:
            digest.update(f"{path.parent.name}/{path.name}:{path.stat().st_size}\0".encode())
        return digest.hexdigest()[:16]


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as handle:
            image = handle.convert("RGB")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path} ({exc}); replace or remove it") from None
    scale = size / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((width, height), Image.BILINEAR)
    left, top = (width - size) // 2, (height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


# ------------------------------------------------------------------------------ MNIST idx
def _open_maybe_gz(folder: Path, name: str, what: str):
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"MNIST root {folder} has no {name} (or {name}.gz): put the four idx "
                       f"files of MNIST there (train-/t10k- images and labels), or pass "
                       f"--dataset for the data set {folder} holds ({what})")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes with ``ndim`` dimensions (plain or gzipped)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path} ({exc}); re-copy the file") from None
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path} is not an idx file: {len(raw)} bytes; re-copy the file")
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or dims != ndim:
        raise DatasetError(f"{path} is not an idx file of {ndim}-d unsigned bytes (magic "
                           f"{raw[:4].hex()}, expected 000008{ndim:02x}); re-copy the file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise DatasetError(f"{path} holds {len(body)} bytes of data, its header announces "
                           f"{'x'.join(map(str, shape))} = {int(np.prod(shape))}: the file is "
                           f"cut short or damaged; re-copy it")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def read_mnist(root: Path, split: str) -> ImageSet:
    images_name, labels_name = MNIST_FILES[split]
    images = read_idx(_open_maybe_gz(root, images_name, "images"), 3)
    labels = read_idx(_open_maybe_gz(root, labels_name, "labels"), 1)
    if len(images) != len(labels):
        raise DatasetError(f"MNIST {split} split in {root}: {len(images)} images but "
                           f"{len(labels)} labels; re-copy the idx files")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"MNIST {split} labels in {root} go up to {labels.max()}, digits "
                           f"are 0-9; re-copy {labels_name}")
    return ImageSet("mnist", split, labels.astype(np.int64), [str(d) for d in range(10)], 1,
                    arrays=images[..., None], root=str(root))


# ------------------------------------------------------------------------------ CIFAR pickles
def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path} is missing: a CIFAR python release holds it (see the "
                           f"layout in rbsf/data/classification.py); re-copy the folder")
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle, encoding="bytes")
    except Exception as exc:    # pickle raises many types for a damaged or foreign file
        raise DatasetError(f"{path} is not a CIFAR python pickle ({type(exc).__name__}); "
                           f"re-copy it") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} holds a {type(data).__name__}, not a CIFAR batch dict")
    return data


def read_cifar(root: Path, name: str, split: str) -> ImageSet:
    folder_name, train_files, test_file, meta_file, label_key, names_key = CIFAR_LAYOUT[name]
    folder = root if root.name == folder_name or not (root / folder_name).is_dir() \
        else root / folder_name
    if not (folder / meta_file).is_file():
        raise DatasetError(f"{name} root {root} holds neither {folder_name}/{meta_file} nor "
                           f"{meta_file}: point --root at the extracted python release "
                           f"({folder_name}/)")
    meta = _unpickle(folder / meta_file)
    if names_key not in meta:
        raise DatasetError(f"{folder / meta_file} has no {names_key.decode()}: not the "
                           f"{name} meta file")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key]]
    arrays, labels = [], []
    for file_name in (train_files if split == "train" else [test_file]):
        batch = _unpickle(folder / file_name)
        if b"data" not in batch or label_key not in batch:
            raise DatasetError(f"{folder / file_name} lacks 'data' or "
                               f"'{label_key.decode()}': not a {name} batch")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch[label_key]):
            raise DatasetError(f"{folder / file_name}: data of shape {data.shape} for "
                               f"{len(batch[label_key])} labels, expected N x 3072")
        arrays.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[label_key], dtype=np.int64))
    labels = np.concatenate(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DatasetError(f"{name} {split} labels in {folder} fall outside the "
                           f"{len(classes)} classes of {meta_file}")
    return ImageSet(name, split, labels, classes, 3, arrays=np.concatenate(arrays),
                    root=str(folder))


# ------------------------------------------------------------------------------ ImageNet folders
def read_image_folders(root: Path, split: str, load_size: int) -> ImageSet:
    folder = root / ("train" if split == "train" else "val")
    train = root / "train"
    if not train.is_dir() or not folder.is_dir():
        raise DatasetError(f"ImageNet root {root} needs train/<wnid>/*.JPEG and "
                           f"val/<wnid>/*.JPEG class folders; {folder} is missing")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{train} holds no class folders (train/<wnid>/*.JPEG)")
    index = {name: i for i, name in enumerate(classes)}
    paths, labels = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if class_dir.name not in index:
            raise DatasetError(f"{class_dir} is a class that {train} does not have; every "
                               f"val/<wnid> must be one of the training classes")
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [index[class_dir.name]] * len(files)
    if not paths:
        raise DatasetError(f"{folder} holds no images (.JPEG, .jpg or .png in class folders)")
    return ImageSet("imagenet", split, np.asarray(labels, dtype=np.int64), classes, 3,
                    paths=paths, load_size=load_size, root=str(root))


def load_split(name: str, root: str, split: str, load_size: int = 256) -> ImageSet:
    """The ``split`` (train / test) of data set ``name`` under ``root``; ``DatasetError``
    naming what is missing or malformed otherwise."""
    if name not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"{name} root {root} is not a folder; pass --root with the folder "
                           f"that holds the {name} files")
    if name == "mnist":
        images = read_mnist(path, split)
    elif name in CIFAR_LAYOUT:
        images = read_cifar(path, name, split)
    else:
        images = read_image_folders(path, split, load_size)
    if not len(images):
        raise DatasetError(f"the {split} split of {name} in {root} holds no images")
    return images


def seeded_subset(images: ImageSet, count: int, seed: int) -> ImageSet:
    """``count`` images drawn without replacement by ``seed`` (all of them when ``count`` is 0
    or not smaller than the set)."""
    if count <= 0 or count >= len(images):
        return images
    return images.subset(np.random.default_rng(seed).permutation(len(images))[:count])


def fingerprint(train: ImageSet, test: ImageSet) -> Dict[str, object]:
    """What identifies a classification data set wherever it lies."""
    return {"dataset": train.name, "train_images": len(train), "test_images": len(test),
            "classes": len(train.classes),
            "sha256": hashlib.sha256((train.digest() + test.digest()).encode()).hexdigest()[:16]}


# ------------------------------------------------------------------------------ training view
@dataclass(frozen=True)
class Transform:
    """Crop to ``size`` (0: the image's own size) and normalise; with a generator also pad by
    ``padding`` zeros, crop at random and flip half of the images when ``flip``."""

    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    size: int = 0
    padding: int = 0
    flip: bool = False

    def __call__(self, image: np.ndarray, rng: Optional[np.random.Generator] = None
                 ) -> torch.Tensor:
        height, width = image.shape[:2]
        size_h, size_w = (self.size, self.size) if self.size else (height, width)
        if rng is None:
            top, left = (height - size_h) // 2, (width - size_w) // 2
        else:
            pad = self.padding
            if pad:
                image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
            top = int(rng.integers(0, image.shape[0] - size_h + 1))
            left = int(rng.integers(0, image.shape[1] - size_w + 1))
        image = image[top:top + size_h, left:left + size_w]
        if rng is not None and self.flip and rng.random() < 0.5:
            image = image[:, ::-1]
        tensor = torch.from_numpy(image.transpose(2, 0, 1).copy()).float() / 255
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return (tensor - mean) / std


class ClassificationSet(Dataset):
    """``length`` items per epoch (default: every image once), a fresh seeded order and
    augmentation each epoch; items are (image tensor, label)."""

    def __init__(self, images: ImageSet, transform: Transform, seed: int,
                 length: Optional[int] = None):
        self.images = images
        self.transform = transform
        self.seed = seed
        self.length = len(images) if length is None else length
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._order: Tuple[int, Optional[np.ndarray]] = (-1, None)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the order and augmentation of ``epoch`` (seen by persistent workers too)."""
        self._epoch[0] = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """The image index of every item of ``epoch`` (as many permutations as it takes)."""
        rounds = -(-self.length // len(self.images))
        perms = [np.random.default_rng([self.seed, epoch, r]).permutation(len(self.images))
                 for r in range(rounds)]
        return np.concatenate(perms)[:self.length]

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, int]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        epoch = int(self._epoch[0])
        if self._order[0] != epoch:
            self._order = (epoch, self.order(epoch))
        source = int(self._order[1][index])
        rng = np.random.default_rng([self.seed, epoch, index, 1])
        return self.transform(self.images.image(source), rng), int(self.images.labels[source])
