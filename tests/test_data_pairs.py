"""Sequence loading, SiamFC pair sampling, labels, and robustness to bad frames."""
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from got10k.datasets import GOT10k
from torch.utils.data import DataLoader

from rbsf.data import (DatasetError, PairConfig, PairDataset, Sequence, balanced_labels,
                       load_sequences, pair_labels)
from rbsf.train.losses import balanced_logistic_loss
from rbsf.data.pairs import read_frame
from rbsf.data.synthetic import write_dataset
from rbsf.models.siamfc import SiamFCNet


@pytest.fixture(scope="module")
def data_got10k(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("got") / "GOT-10k", "got10k", 3, 24, seed=11,
                         frame_size=(240, 180))


def _rect_sequence(folder: Path, boxes, size=(320, 240)):
    """Frames of a flat grey scene with a white rectangle target at ``boxes`` (integer x, y, w, h)."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for t, (x, y, w, h) in enumerate(boxes):
        image = np.full((size[1], size[0], 3), 60, np.uint8)
        image[y:y + h, x:x + w] = 255
        path = folder / f"{t + 1:08d}.png"
        cv2.imwrite(str(path), image)
        frames.append(str(path))
    return Sequence("rect", frames, np.array(boxes, float), np.ones(len(boxes), bool))


def _bright_extent(channel: np.ndarray):
    ys, xs = np.nonzero(channel > 160)
    return ((xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0,
            xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


def test_load_sequences_layout_detection_and_errors(data_got10k, tmp_path):
    for subset in ("train", "val"):
        toolkit = GOT10k(str(data_got10k), subset=subset)
        ours = load_sequences(str(data_got10k), subset)
        assert [s.name for s in ours] == toolkit.seq_names
        np.testing.assert_allclose(ours[1].boxes, toolkit[1][1])
    assert ([s.name for s in load_sequences(str(data_got10k / "val"))]
            == GOT10k(str(data_got10k), "val").seq_names)
    # the GOT-10k train download has no list.txt: the folders make the list
    copy = tmp_path / "nolist"
    shutil.copytree(data_got10k / "train", copy / "train")
    (copy / "train" / "list.txt").unlink()
    assert ([s.name for s in load_sequences(str(copy))]
            == GOT10k(str(data_got10k), "train").seq_names)
    (tmp_path / "empty" / "something").mkdir(parents=True)
    for bad in (tmp_path / "missing", tmp_path / "empty"):
        with pytest.raises(DatasetError, match="GOT-10k root.*OTB root.*UAV123 root"):
            load_sequences(str(bad))
    with pytest.raises(DatasetError, match="subset"):
        load_sequences(str(data_got10k), "training")


def test_load_sequences_reads_only_the_named_ones(data_got10k, tmp_path):
    every = load_sequences(str(data_got10k), "val")
    chosen = [every[-1].name]
    copy = tmp_path / "got"
    shutil.copytree(data_got10k / "val", copy / "val")
    for seq in every[:-1]:   # the others become unreadable: a names filter must not touch them
        (copy / "val" / seq.name / "groundtruth.txt").write_text("not a box\n")
    ours = load_sequences(str(copy), "val", chosen)
    assert [s.name for s in ours] == chosen
    np.testing.assert_allclose(ours[0].boxes, every[-1].boxes)
    assert load_sequences(str(copy), "val", ["nope"]) == []
    otb = write_dataset(str(tmp_path / "otb"), "otb", 2, 3, seed=1, frame_size=(64, 48))
    second = otb / "Jogging"
    (otb / "Basketball").rename(second)
    (second / "groundtruth_rect.txt").rename(second / "groundtruth_rect.1.txt")
    shutil.copy(second / "groundtruth_rect.1.txt", second / "groundtruth_rect.2.txt")
    assert ([s.name for s in load_sequences(str(otb), names={"Jogging"})]
            == ["Jogging.1", "Jogging.2"])


def test_crops_centre_the_target_at_the_context_scale(tmp_path):
    boxes = [(100 + 3 * t, 80 + 2 * t, 40, 30) for t in range(6)]
    seq = _rect_sequence(tmp_path / "rect", boxes)
    config = PairConfig(stretch=0.0, instance_size=247)          # no stretch, no random shift
    dataset = PairDataset([seq], config, pairs_per_epoch=4, seed=0)
    s_z = np.sqrt((40 + 35) * (30 + 35))                          # context 0.5 * (w + h) = 35
    for i in range(4):
        z, x, _ = dataset[i]
        assert z.shape == (3, 127, 127) and x.shape == (3, 239, 239) and z.dtype == torch.float32
        assert 200 < float(z.max()) <= 255                        # raw 0-255 values, not normalised
        cx, cy, w, h = _bright_extent(z[0].numpy())
        assert abs(cx - 63) <= 0.5 and abs(cy - 63) <= 0.5
        assert abs(w - 40 * 127 / s_z) <= 1.5 and abs(h - 30 * 127 / s_z) <= 1.5
        cx, cy, w, h = _bright_extent(x[0].numpy())
        assert abs(cx - 119) <= 0.5 and abs(cy - 119) <= 0.5
        s_x = s_z * 255 / 127                                    # instance crop side in the frame
        assert abs(w - 40 * 255 / s_x) <= 1.5


def test_search_crop_shift_and_stretch_stay_in_range(tmp_path):
    seq = _rect_sequence(tmp_path / "rect", [(140, 100, 40, 40)] * 4)
    dataset = PairDataset([seq], PairConfig(), pairs_per_epoch=24, seed=3)
    shifts, widths = set(), []
    for i in range(24):
        _, x, _ = dataset[i]
        cx, cy, w, _ = _bright_extent(x[0].numpy())
        shifts.add((cx - 119, cy - 119))
        widths.append(w)
        assert abs(cx - 119) <= 4.5 and abs(cy - 119) <= 4.5
    assert len(shifts) > 5
    nominal = 40 * 127 / np.sqrt(80 * 80)
    assert min(widths) >= nominal * 0.95 - 1.5 and max(widths) <= nominal * 1.05 + 1.5


def test_pairs_reproducible_per_epoch_and_across_workers(data_got10k):
    sequences = load_sequences(str(data_got10k))
    config = PairConfig(exemplar_size=95, instance_size=191, search_size=175)
    dataset = PairDataset(sequences, config, pairs_per_epoch=6, seed=7)
    first = [dataset[i] for i in range(6)]
    again = PairDataset(sequences, config, pairs_per_epoch=6, seed=7)
    for (z1, x1, _), (z2, x2, _) in zip(first, (again[i] for i in range(6))):
        assert torch.equal(z1, z2) and torch.equal(x1, x2)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0][1], first[0][1])
    dataset.set_epoch(0)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(dataset, batch_size=3, num_workers=workers)
        batches[workers] = [b for b in loader]
    for (z0, x0, _), (z2, x2, _) in zip(batches[0], batches[2]):
        assert torch.equal(z0, z2) and torch.equal(x0, x2)
    assert torch.equal(batches[0][0][0][0], first[0][0])


def test_frame_filter_uses_visibility_and_box_limits(tmp_path):
    boxes = [(100, 80, 40, 30), (100, 80, 10, 30), (100, 80, 40, 30), (100, 80, 200, 30),
             (100, 80, 40, 30)]
    seq = _rect_sequence(tmp_path / "rect", boxes, size=(640, 480))
    seq.visible[2] = False
    dataset = PairDataset([seq], PairConfig(), pairs_per_epoch=1)
    # 10 px wide, hidden, 9:1 aspect dropped
    np.testing.assert_array_equal(dataset.valid[0], [0, 4])
    with pytest.raises(DatasetError, match="no sequence has two frames whose target passes the "
                                           "SiamFC filter .* sides 50-500 px"):
        PairDataset([seq], PairConfig(min_side=50), pairs_per_epoch=1)


def test_no_pairs_says_whether_frames_are_unreadable_or_targets_filtered(data_got10k, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(data_got10k / "train", root / "train")
    sequences = load_sequences(str(root))
    for path in sequences[0].frames + sequences[1].frames:
        Path(path).write_bytes(b"not a jpeg")
    config = PairConfig(exemplar_size=95, instance_size=191, search_size=175)
    with pytest.raises(DatasetError, match="^no training pairs in 2 sequences: the frames of "
                                           "every sequence are unreadable .*00000001.jpg"):
        PairDataset(sequences[:2], config, pairs_per_epoch=4)
    with pytest.raises(DatasetError, match="^no training pairs in 3 sequences: 2 with unreadable "
                                           "frames .* and 1 without two frames whose target "
                                           "passes"):
        PairDataset(sequences, PairConfig(min_side=200), pairs_per_epoch=4)
    tiny = PairConfig(max_side=5)
    with pytest.raises(DatasetError, match="in 1 sequence: no sequence has two frames whose "
                                           "target passes .*visible targets measure .* px in "
                                           "240x180 frames"):
        PairDataset(sequences[2:], tiny, pairs_per_epoch=4)


def test_balanced_labels_hand_computed():
    labels, weights = balanced_labels(17)
    assert labels.shape == weights.shape == (1, 1, 17, 17)
    positives = {(y, x) for y in range(17) for x in range(17) if (y - 8) ** 2 + (x - 8) ** 2 <= 4}
    assert len(positives) == 13
    assert {tuple(p) for p in torch.nonzero(labels[0, 0]).tolist()} == positives
    assert float(weights[labels > 0].sum()) == pytest.approx(0.5)
    assert float(weights[labels == 0].sum()) == pytest.approx(0.5)
    assert float(weights[0, 0, 8, 8]) == pytest.approx(0.5 / 13)
    # radius of one cell: the centre cross
    labels15, _ = balanced_labels(15, radius=8)
    assert int(labels15.sum()) == 5


def test_pair_labels_of_positive_and_negative_pairs():
    labels, weights = pair_labels(torch.tensor([1.0, 0.0, 1.0]), 17)
    balanced, balanced_weights = balanced_labels(17)
    assert labels.shape == weights.shape == (3, 1, 17, 17)
    for i in (0, 2):
        assert torch.equal(labels[i], balanced[0]) and torch.equal(weights[i], balanced_weights[0])
    assert float(labels[1].abs().sum()) == 0.0                   # a negative pair: no positive cell
    assert torch.allclose(weights[1], torch.full((1, 17, 17), 1 / 289))
    # a constant response costs ln 2 per pair, positive or negative
    loss = balanced_logistic_loss(torch.zeros(3, 1, 17, 17), labels, weights)
    assert float(loss) == pytest.approx(np.log(2))
    # a response that is negative everywhere costs the negative pair log(1 + e^-a) only
    a = 4.0
    loss = balanced_logistic_loss(torch.full((1, 1, 17, 17), -a), labels[1:2], weights[1:2])
    assert float(loss) == pytest.approx(np.log1p(np.exp(-a)), rel=1e-5)


def test_negative_pairs_show_another_sequences_target(tmp_path):
    square = _rect_sequence(tmp_path / "square", [(140, 100, 40, 40)] * 4)
    wide = _rect_sequence(tmp_path / "wide", [(120, 100, 80, 20)] * 4)
    config = PairConfig(stretch=0.0, negative_pairs=0.5)
    dataset = PairDataset([square, wide], config, pairs_per_epoch=40, seed=5)
    labels = []
    for i in range(40):
        z, x, label = dataset[i]
        z_w, z_h = _bright_extent(z[0].numpy())[2:]
        x_w, x_h = _bright_extent(x[0].numpy())[2:]
        same_shape = (z_w > z_h) == (x_w > x_h) and abs(z_w - z_h) > 5 and abs(x_w - x_h) > 5 \
            or abs(z_w - z_h) <= 5 and abs(x_w - x_h) <= 5
        assert same_shape == (float(label) == 1.0), i
        labels.append(float(label))
    assert 8 <= labels.count(0.0) <= 32                             # about half negative
    plain = PairDataset([square, wide], PairConfig(stretch=0.0), pairs_per_epoch=40, seed=5)
    assert all(float(plain[i][2]) == 1.0 for i in range(40))
    alone = PairDataset([square], config, pairs_per_epoch=8, seed=5)  # no other sequence to draw
    assert all(float(alone[i][2]) == 1.0 for i in range(8))


def test_bad_frame_does_not_crash_a_training_epoch(data_got10k, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(data_got10k / "train", root / "train")
    seq_dir = root / "train" / "GOT-10k_Train_000002"
    for name in ("00000005.jpg", "00000012.jpg"):
        (seq_dir / name).write_bytes(b"not a jpeg at all")
    (seq_dir / "00000020.jpg").unlink()                            # missing file
    config = PairConfig(exemplar_size=95, instance_size=191, search_size=175)   # a small preset
    dataset = PairDataset(load_sequences(str(root)), config, pairs_per_epoch=32, seed=0)
    net = SiamFCNet("fp", width=0.25)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    labels, weights = balanced_labels(11)
    batches = 0
    for z, x, _ in DataLoader(dataset, batch_size=8, num_workers=2):
        response = net(z, x)
        loss = F.binary_cross_entropy_with_logits(response, labels.expand_as(response),
                                                  weights.expand_as(response),
                                                  reduction="sum") / len(z)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
        batches += 1
    assert batches == 4
    reference = PairDataset(load_sequences(str(root)), config, pairs_per_epoch=32, seed=0)
    for i in range(len(reference)):
        reference[i]                                              # in this process, no workers
    assert reference.skipped_pairs > 0
    assert dataset.skipped_pairs == reference.skipped_pairs      # counted across worker processes


def _otb_folder(root: Path, name: str, frames: int, boxes: str = None, anno="groundtruth_rect.txt"):
    (root / name / "img").mkdir(parents=True)
    for i in range(1, frames + 1):
        cv2.imwrite(str(root / name / "img" / f"{i:04d}.jpg"), np.zeros((40, 60, 3), np.uint8))
    if boxes is not None:
        (root / name / anno).write_text(boxes)


def test_otb_and_uav123_loader_details(tmp_path):
    otb = tmp_path / "OTB"
    _otb_folder(otb, "Jogging", 3, "1\t2\t3\t4\n1\t2\t3\t4\n5\t6\t7\t8\n", "groundtruth_rect.1.txt")
    (otb / "Jogging" / "groundtruth_rect.2.txt").write_text("1 2 3 4\n0 0 0 0\n5 6 7 8\n")
    sequences = load_sequences(str(otb))
    assert [s.name for s in sequences] == ["Jogging.1", "Jogging.2"]
    np.testing.assert_array_equal(sequences[1].visible, [True, False, True])
    np.testing.assert_array_equal(sequences[0].boxes[2], [5, 6, 7, 8])

    uav = write_dataset(tmp_path / "UAV123", "uav123", 1, 2, seed=4, frame_size=(48, 36))
    seq = load_sequences(str(uav))[0]
    anno = np.loadtxt(uav / "anno" / "UAV123" / "uav6.txt", delimiter=",")
    np.testing.assert_array_equal(seq.visible, ~np.isnan(anno).any(axis=1))
    (uav / "data_seq" / "UAV123" / "uav6" / "000109.jpg").unlink()
    with pytest.raises(DatasetError, match="uav6: 108 frames .* 109 boxes"):
        load_sequences(str(uav))


@pytest.mark.parametrize("frames, boxes", [(5, 3), (3, 5)])
def test_otb_ground_truth_of_another_length_is_an_error(tmp_path, frames, boxes):
    _otb_folder(tmp_path, "Basketball", 4, "1,2,3,4\n" * 4)
    _otb_folder(tmp_path, "Biker", frames, "1,2,3,4\n" * boxes)
    with pytest.raises(DatasetError, match=f"Biker: {frames} frames in img/ but {boxes} boxes in "
                                           f"groundtruth_rect.txt"):
        load_sequences(str(tmp_path))
    assert [s.name for s in load_sequences(str(tmp_path), names=["Basketball"])] == ["Basketball"]


def test_otb_folder_without_ground_truth_is_an_error(tmp_path):
    _otb_folder(tmp_path, "Basketball", 4, "1,2,3,4\n" * 4)
    _otb_folder(tmp_path, "Biker", 4)
    with pytest.raises(DatasetError, match="Biker has img/ but no groundtruth_rect"):
        load_sequences(str(tmp_path))
    # David's annotation covers frames 300-770 of img/ (the got10k toolkit's range)
    _otb_folder(tmp_path, "David", 6, "1,2,3,4\n")
    (tmp_path / "Biker" / "groundtruth_rect.txt").write_text("1,2,3,4\n" * 4)
    with pytest.raises(DatasetError, match="David: frames 300-770 .* 6 frames in img/"):
        load_sequences(str(tmp_path))


def test_got10k_short_ground_truth_is_blamed_on_itself(data_got10k, tmp_path):
    root = tmp_path / "got"
    shutil.copytree(data_got10k / "train", root / "train")
    gt = root / "train" / "GOT-10k_Train_000002" / "groundtruth.txt"
    gt.write_text("".join(gt.read_text().splitlines(keepends=True)[:20]))
    with pytest.raises(DatasetError, match="GOT-10k_Train_000002: groundtruth.txt has 20 boxes "
                                           "for 24 frames") as error:
        load_sequences(str(root))
    assert "absence.label" not in str(error.value)


def test_got10k_missing_sequences_and_ground_truth_are_errors(data_got10k, tmp_path):
    root = tmp_path / "got"
    shutil.copytree(data_got10k / "train", root / "train")
    shutil.rmtree(root / "train" / "GOT-10k_Train_000003")
    with pytest.raises(DatasetError, match="1 of 3 sequences listed in .*list.txt .*: "
                                           "GOT-10k_Train_000003"):
        load_sequences(str(root))
    assert len(load_sequences(str(root), names=["GOT-10k_Train_000001"])) == 1
    (root / "train" / "list.txt").unlink()         # the train download: folders are the list
    (root / "train" / "GOT-10k_Train_000002" / "groundtruth.txt").unlink()
    with pytest.raises(DatasetError, match="Train_000002 has frames but no groundtruth.txt"):
        load_sequences(str(root))


def test_default_roots_follow_environment(monkeypatch, tmp_path):
    from rbsf.data import default_root
    monkeypatch.delenv("RBSF_OTB", raising=False)
    assert default_root("otb").parts[-2:] == ("data", "OTB")
    monkeypatch.setenv("RBSF_GOT10K", str(tmp_path))
    assert default_root("GOT-10k") == tmp_path


def test_reduced_decode_gives_the_same_crops(tmp_path):
    boxes = [(500, 300, 260, 200), (520, 310, 250, 210)]        # large target: crops shrink > 2x
    folder = tmp_path / "big"
    folder.mkdir()
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 255, (45, 80, 3), dtype=np.uint8), (1280, 720),
                         interpolation=cv2.INTER_CUBIC)
    frames = []
    for t in range(2):
        path = folder / f"{t + 1:08d}.jpg"
        cv2.imwrite(str(path), texture, [cv2.IMWRITE_JPEG_QUALITY, 95])
        frames.append(str(path))
    seq = Sequence("big", frames, np.array(boxes, float), np.ones(2, bool))
    image, reduction = read_frame(frames[0], 3)
    assert reduction == 2 and image.shape == (360, 640, 3)
    fast = PairDataset([seq], PairConfig(), 3, seed=2)
    full = PairDataset([seq], PairConfig(reduced_decode=False), 3, seed=2)
    for i in range(3):
        for a, b in zip(fast[i], full[i]):
            # same content, decoder rounding only
            assert float((a - b).abs().mean()) < 2.0
    smooth_shift = float((fast[0][0] - torch.roll(full[0][0], 3, dims=2)).abs().mean())
    assert smooth_shift > 8.0                                    # a 3-pixel misplacement would show


def test_set_epoch_reaches_persistent_workers(data_got10k):
    config = PairConfig(exemplar_size=95, instance_size=191, search_size=175)
    dataset = PairDataset(load_sequences(str(data_got10k)), config, pairs_per_epoch=4, seed=1)
    loader = DataLoader(dataset, batch_size=4, num_workers=1, persistent_workers=True)
    seen = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        seen.append(next(iter(loader))[1])
    dataset.set_epoch(1)
    assert torch.equal(seen[1][2], dataset[2][1])
    assert not torch.equal(seen[0], seen[1])
