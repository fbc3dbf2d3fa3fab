"""Classification readers on small files written here, by hand, in the exact official layouts
(MNIST idx, CIFAR python pickles, ImageNet class folders), their errors, and the training view."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from rbsf.data.classification import (ClassificationSet, Transform, fingerprint, load_split,
                                      seeded_subset)
from rbsf.data.sequences import DatasetError


def idx(array: np.ndarray) -> bytes:
    """The idx format as LeCun's page describes it: two zero bytes, type 0x08 (unsigned
    byte), the number of dimensions, each size as a big-endian 32-bit integer, the data."""
    return bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape) \
        + array.astype(np.uint8).tobytes()


def write_mnist(folder, train=12, test=5, gz=True):
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        arrays[prefix] = (images, labels)
        for kind, data in (("images-idx3", images), ("labels-idx1", labels)):
            name = folder / f"{prefix}-{kind}-ubyte"
            if gz:
                with gzip.open(str(name) + ".gz", "wb") as handle:
                    handle.write(idx(data))
            else:
                name.write_bytes(idx(data))
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files_plain_or_gzipped(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = load_split("mnist", str(tmp_path), split)
        assert images.channels == 1 and len(images) == len(arrays[prefix][1])
        assert np.array_equal(images.arrays[..., 0], arrays[prefix][0])
        assert np.array_equal(images.labels, arrays[prefix][1])


def test_mnist_errors_name_the_file_and_the_fix(tmp_path):
    write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="no t10k-labels-idx1-ubyte"):
        load_split("mnist", str(tmp_path), "test")
    bad = tmp_path / "train-images-idx3-ubyte"
    raw = bad.read_bytes()
    bad.write_bytes(raw[:2] + b"\x0d" + raw[3:])            # float type instead of ubyte
    with pytest.raises(DatasetError, match="not an idx file.*000008"):
        load_split("mnist", str(tmp_path), "train")
    bad.write_bytes(raw[:-100])                              # cut short
    with pytest.raises(DatasetError, match="cut short"):
        load_split("mnist", str(tmp_path), "train")
    with pytest.raises(DatasetError, match="not a folder"):
        load_split("mnist", str(tmp_path / "nowhere"), "train")


def test_shipped_mnist_digits_are_real_and_balanced():
    train = load_split("mnist", "data/mnist", "train")
    test = load_split("mnist", "data/mnist", "test")
    assert (len(train), len(test)) == (4000, 1000)
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    # handwriting on a black ground: most pixels 0, strokes near 255
    assert (train.arrays == 0).mean() > 0.7 and train.arrays.max() == 255
    assert len({train.digest(), test.digest()}) == 2


def cifar_batch(rng, n, label_key, classes):
    data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    return {b"batch_label": b"testing batch", label_key: list(rng.integers(0, classes, n)),
            b"data": data, b"filenames": [f"img{i}.png".encode() for i in range(n)]}


def write_pickle(path, obj):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)


def test_cifar10_python_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    batches = [cifar_batch(rng, 3, b"labels", 10) for _ in range(5)]
    for i, batch in enumerate(batches, 1):
        write_pickle(folder / f"data_batch_{i}", batch)
    write_pickle(folder / "test_batch", cifar_batch(rng, 4, b"labels", 10))
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                  "frog", "horse", "ship", "truck")]
    write_pickle(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    for root in (tmp_path, folder):              # the release folder or the one above it
        train = load_split("cifar10", str(root), "train")
        assert len(train) == 15 and train.classes[9] == "truck"
        # a row is 1024 red, 1024 green, 1024 blue values, each plane row-major 32 x 32
        row = batches[1][b"data"][2]
        assert train.arrays[5][0, 1].tolist() == [row[1], row[1024 + 1], row[2048 + 1]]
        assert train.arrays[5][2, 3, 2] == row[2048 + 2 * 32 + 3]
        assert train.labels[5] == batches[1][b"labels"][2]
    assert len(load_split("cifar10", str(tmp_path), "test")) == 4
    (folder / "data_batch_3").write_bytes(b"\x80\x02 not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3 is not a CIFAR python pickle"):
        load_split("cifar10", str(tmp_path), "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="neither cifar-10-batches-py/batches.meta"):
        load_split("cifar10", str(tmp_path / "empty"), "train")


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name, n in (("train", 6), ("test", 2)):
        batch = cifar_batch(rng, n, b"fine_labels", 100)
        batch[b"coarse_labels"] = [0] * n
        write_pickle(folder / name, batch)
    write_pickle(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                                   b"coarse_label_names": [b"x"] * 20})
    train = load_split("cifar100", str(tmp_path), "train")
    assert len(train) == 6 and len(train.classes) == 100 and train.classes[42] == "c42"
    write_pickle(folder / "test", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DatasetError, match="lacks 'data' or 'fine_labels'"):
        load_split("cifar100", str(tmp_path), "test")


def write_imagenet(root):
    rng = np.random.default_rng(3)
    for split, per_class in (("train", 2), ("val", 1)):
        for wnid in ("n01440764", "n01443537"):
            (root / split / wnid).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / wnid / f"{wnid}_{i}.JPEG")


def test_imagenet_class_folders(tmp_path):
    write_imagenet(tmp_path)
    train = load_split("imagenet", str(tmp_path), "train", load_size=16)
    test = load_split("imagenet", str(tmp_path), "test", load_size=16)
    assert train.classes == ["n01440764", "n01443537"] and train.labels.tolist() == [0, 0, 1, 1]
    assert test.labels.tolist() == [0, 1]
    assert train.image(0).shape == (16, 16, 3) and train.image(0).dtype == np.uint8
    (tmp_path / "val" / "n99999999").mkdir()
    with pytest.raises(DatasetError, match="n99999999 is a class that"):
        load_split("imagenet", str(tmp_path), "test")
    with pytest.raises(DatasetError, match="train/<wnid>"):
        load_split("imagenet", str(tmp_path / "val"), "train")


def test_training_view_is_seeded_by_epoch_and_index_only(tmp_path):
    write_mnist(tmp_path, train=20)
    images = load_split("mnist", str(tmp_path), "train")
    transform = Transform((0.5,), (0.25,), padding=2)
    a, b = ClassificationSet(images, transform, 7), ClassificationSet(images, transform, 7)
    a.set_epoch(3)
    b.set_epoch(3)
    late = b[11]                                   # read out of order: the same item
    assert all(torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1] for i in range(20))
    assert torch.equal(late[0], a[11][0])
    assert sorted(a.order(3).tolist()) == list(range(20)) and a.order(3).tolist() != \
        a.order(4).tolist()
    plain = transform(images.image(0))
    assert plain.shape == (1, 28, 28)
    assert torch.allclose(plain, (torch.tensor(images.arrays[0]).permute(2, 0, 1) / 255
                                  - 0.5) / 0.25)
    longer = ClassificationSet(images, transform, 7, length=45)   # several permutations
    assert len(longer) == 45 and np.bincount(longer.order(0)).min() >= 2
    sub = seeded_subset(images, 5, seed=1)
    assert len(sub) == 5 and fingerprint(sub, images) != fingerprint(images, images)
