"""Real-imagery training data: stamp filter, rendered sequences, video tracks, held-out clips.

Tiny stand-ins in the real formats (RGBA PNG stamps in category folders, a JPEG background,
video frames as arrays), never the fetched sources.
"""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rbsf.data import PairConfig, PairDataset, load_sequences
from rbsf.data import heldout, render, stamps
from rbsf.files import OutputPathError


def _png(path: Path, rgb: np.ndarray, alpha: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA").save(path)


def _disc(size: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 2 - 2) ** 2) * 255


def make_stamps(root: Path) -> Path:
    """A photo-like stamp (textured), a flat cartoon, a symbol and a vector drawing."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (80, 80, 3)).astype(np.uint8), (3, 3), 0)
    _png(root / "animals" / "mammals" / "cat.png", texture, _disc())
    for k in range(4):
        _png(root / "animals" / "mammals" / f"dog{k}.png", np.rot90(texture, k)[::-1], _disc())
    _png(root / "animals" / "cartoon.png", np.full((80, 80, 3), (200, 40, 40)), _disc())
    _png(root / "symbols" / "letters" / "a.png", texture, _disc())
    _png(root / "food" / "drawn.png", texture, _disc())
    (root / "food" / "drawn.svg").write_text("<svg/>")
    return root


def test_stamp_filter_keeps_photos_and_drops_drawings_symbols_and_vectors(tmp_path):
    infos = {i.path: i for i in stamps.build_index(make_stamps(tmp_path / "stamps"))}
    assert infos["animals/mammals/cat.png"].weight == 1.0
    assert infos["animals/mammals/cat.png"].category == "animals/mammals"
    assert infos["animals/cartoon.png"].reason == "flat fill"
    assert infos["symbols/letters/a.png"].weight == 0.0
    assert infos["food/drawn.png"].reason == "vector drawing (svg)"
    index = tmp_path / "stamps.json"
    stamps.save_index(list(infos.values()), index)
    assert [i.path for i in stamps.load_index(index)] == list(infos)
    sheet = stamps.contact_sheet(tmp_path / "stamps", list(infos.values()), tile=40, columns=3)
    assert sheet.shape == (120, 120, 3)


def tiny_library(tmp_path: Path) -> render.Library:
    root = make_stamps(tmp_path / "stamps")
    infos = [i for i in stamps.build_index(root) if i.weight > 0]
    background = tmp_path / "bg.jpg"
    rng = np.random.default_rng(1)
    cv2.imwrite(str(background), cv2.resize(rng.integers(0, 256, (30, 40, 3)).astype(np.uint8),
                                            (400, 300)))
    return render.load_library(root, infos, [background])


def moving_texture_video(steps, size=(160, 120)) -> list:
    """Frames of a static textured scene shifted by the cumulative ``steps`` (dx, dy)."""
    rng = np.random.default_rng(2)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (400, 400, 3)).astype(np.uint8), (5, 5), 0)
    frames, offset = [], np.zeros(2)
    for step in [(0, 0)] + list(steps):
        offset += step
        m = np.float32([[1, 0, -100 + offset[0]], [0, 1, -100 + offset[1]]])
        frames.append(cv2.warpAffine(scene, m, size))
    return frames


def test_follow_recovers_a_known_translation():
    frames = moving_texture_video([(1.5, -1.0)] * 15)
    greys = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    boxes = render.follow(greys, 0, np.array([50.0, 40.0, 40.0, 30.0]), 16)
    assert len(boxes) == 16
    np.testing.assert_allclose(boxes[-1][:2], [50 + 15 * 1.5, 40 - 15 * 1.0], atol=1.0)
    np.testing.assert_allclose(boxes[-1][2:], [40, 30], rtol=0.05)


def test_follow_stops_where_the_forward_backward_check_fails():
    frames = moving_texture_video([(1.0, 0.0)] * 5)
    rng = np.random.default_rng(3)
    frames += [rng.integers(0, 256, frames[0].shape).astype(np.uint8) for _ in range(5)]
    greys = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    boxes = render.follow(greys, 0, np.array([50.0, 40.0, 40.0, 30.0]), 10)
    assert len(boxes) == 6          # frames 0-5 of the real motion, none of the noise


def test_training_set_is_a_got10k_root_that_pairs_and_the_toolkit_read(tmp_path):
    from got10k.datasets import GOT10k

    library = tiny_library(tmp_path)
    video = moving_texture_video([(1.0, 0.5)] * 19)
    out = tmp_path / "real"
    render.write_real_dataset(out, library, {"clip.mp4": video}, 3, 2, 20, seed=0,
                              frame_size=(240, 180))
    sequences = load_sequences(str(out))
    assert len(sequences) >= 4
    for seq in sequences:
        size = Image.open(seq.frames[0]).size
        ok = seq.visible
        assert (np.all(seq.boxes[ok, 0] >= 0)
                and np.all(seq.boxes[ok, 0] + seq.boxes[ok, 2] <= size[0] + 1))
    toolkit = GOT10k(str(out), subset="train")
    frames, anno = toolkit[0]
    assert len(frames) == len(anno) == 20
    z, x, _ = PairDataset(sequences, PairConfig(), 2, seed=0)[0]
    assert z.shape == (3, 127, 127) and x.shape == (3, 239, 239)
    with pytest.raises(OutputPathError):
        render.write_real_dataset(out, library, {}, 1, 0, 5, seed=0)


@pytest.mark.parametrize("split,prefix", [("held-out", "Heldout"), ("validation", "Val"),
                                          ("tuning", "Tune")])
def test_rendered_otb_set_is_otb_layout(tmp_path, split, prefix):
    out = render.write_rendered_otb(tmp_path / "held", tiny_library(tmp_path), 2, 8, seed=5,
                                    frame_size=(160, 120), split=split)
    sequences = load_sequences(str(out))
    assert [s.name for s in sequences] == [f"{prefix}0001", f"{prefix}0002"]
    assert all(len(s.frames) == 8 for s in sequences)
    assert json.loads((out / "dataset.json").read_text())["kind"] == f"rbsf.data.render {split} set"
    assert not list(tmp_path.glob(".held*"))


def test_rendered_set_names_each_target_stamp_as_drawn(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "stamps"
    for name, colour in (("reds/red.png", (1.0, 0.15, 0.15)),
                         ("blues/blue.png", (0.15, 0.15, 1.0))):
        texture = rng.integers(120, 256, (80, 80, 1)) * np.array(colour)
        _png(root / "animals" / name, texture, _disc())
    infos = [i for i in stamps.build_index(root) if i.weight > 0]
    assert len(infos) == 2
    background = tmp_path / "bg.jpg"
    cv2.imwrite(str(background), np.full((300, 400, 3), 128, np.uint8))
    library = render.load_library(root, infos, [background])
    out = render.write_rendered_otb(tmp_path / "set", library, 8, 2, seed=3,
                                    frame_size=(160, 120), split="tuning")
    targets = json.loads((out / "dataset.json").read_text())["targets"]
    assert sorted(targets) == [f"Tune{i:04d}" for i in range(1, 9)]
    assert set(targets.values()) == {"animals/reds/red.png", "animals/blues/blue.png"}
    for sequence in load_sequences(str(out)):
        x, y, w, h = sequence.boxes[0].astype(int)
        image = cv2.imread(str(sequence.frames[0]))
        centre = image[y + h // 3: y + 2 * h // 3, x + w // 3: x + 2 * w // 3].reshape(-1, 3)
        blue, _, red = centre.mean(axis=0)
        seen = "animals/reds/red.png" if red > blue else "animals/blues/blue.png"
        assert targets[sequence.name] == seen, sequence.name


def test_rendered_set_names_each_background_as_drawn(tmp_path):
    root = make_stamps(tmp_path / "stamps")
    infos = [i for i in stamps.build_index(root) if i.weight > 0]
    files = []
    for name, bgr in (("grey.jpg", (128, 128, 128)), ("green.jpg", (40, 170, 40))):
        files.append(tmp_path / name)
        cv2.imwrite(str(files[-1]), np.full((300, 400, 3), bgr, np.uint8))
    library = render.load_library(root, infos, files, background_names=["src/grey", "src/green"])
    out = render.write_rendered_otb(tmp_path / "set", library, 8, 2, seed=5,
                                    frame_size=(160, 120), split="tuning")
    named = json.loads((out / "dataset.json").read_text())["backgrounds"]
    assert set(named.values()) == {"src/grey", "src/green"}
    for sequence in load_sequences(str(out)):
        image = cv2.imread(str(sequence.frames[0])).astype(int)
        x, y, w, h = sequence.boxes[0].astype(int)
        outside = np.ones(image.shape[:2], bool)
        outside[max(y, 0):y + h, max(x, 0):x + w] = False
        blue, green, red = np.median(image[outside], axis=0)
        assert named[sequence.name] == ("src/green" if green - red > 60 else "src/grey"), \
            sequence.name


def test_library_background_names(tmp_path):
    library = tiny_library(tmp_path)
    assert library.background_names == ["bg.jpg"]          # default: the file name
    with pytest.raises(render.RenderError, match="2 background names for 1 backgrounds"):
        render.Library(library.mattes, library.weights, library.backgrounds, ["a", "b"])


def test_rendered_otb_set_refuses_an_unknown_split(tmp_path):
    with pytest.raises(render.RenderError, match="unknown split"):
        render.write_rendered_otb(tmp_path / "x", tiny_library(tmp_path), 1, 2, seed=0,
                                  split="test")


def test_stamp_splits_are_fixed_disjoint_and_sized():
    infos = [stamps.StampInfo(f"a/b/{i}.png", "a/b", 1, 1, 1, 0, 0, False, 1.0, "photo")
             for i in range(400)]
    parts = {s: {i.path for i in render.split_stamps(infos, (s,))} for s in render.SOURCE_SPLITS}
    assert sum(len(p) for p in parts.values()) == len(set().union(*parts.values())) == 400
    assert 40 <= len(parts["held-out"]) <= 80 and 20 <= len(parts["tuning"]) <= 60
    # the held-out split is the one every shipped report used: a fixed hash below 15 %
    assert render.stamp_split("animals/cartoon.png") == "held-out"     # crc32 % 100 == 1
    assert render.stamp_split("animals/mammals/dog0.png") == "training"  # 71
    training = render.split_stamps(infos, render.library_splits("training").stamps)
    assert {i.path for i in training} == parts["training"] | parts["tuning"]
    assert render.library_splits("training", ("tuning",)) == (("training",), ("training",))
    assert render.library_splits("tuning-sources") == (("tuning",), ("tuning-sources",))
    assert not parts["tuning-sources"]                   # a split of backgrounds only
    with pytest.raises(render.RenderError, match="unknown split"):
        render.library_splits("test")


def test_picture_names_join_the_variants_of_one_picture():
    assert render.picture_name("Autumn/contents/images/1920x1080.jpg") == "autumn"   # Plasma
    assert render.picture_name("abstract/Elephants_3840x2160.jpg") == "elephants"
    assert render.picture_name("abstract/Elephants.jpg") == "elephants"
    assert render.picture_name("adwaita-d.jpg") == render.picture_name("adwaita-l.jpg") == "adwaita"
    assert render.picture_name("desktop/MATE-Stripes-Dark.jpg") == "mate-stripes"
    assert render.picture_name("motorcycle_left.jpg") == "motorcycle"
    assert render.picture_name("desktop/Ubuntu-Mate-Cold-no-logo.jpg") == "ubuntu-mate-cold-no-logo"
    assert render.picture_name("1920x1080.jpg") == "1920x1080"        # a name that is all size


def test_variants_of_one_picture_share_a_split():
    # a Plasma wallpaper ships one file per screen size; split by file name, its 2560x1600
    # file fell in the tuning split while its other sizes trained
    sizes = ["2560x1600", "1638x1024", "1920x1080", "1280x1024", "5120x2880", "1080x1920"]
    for wallpaper in ("Autumn", "Cascade", "Kite", "Opal"):
        splits = {render.background_split("plasma-wallpapers",
                                          f"{wallpaper}/contents/images/{size}.jpg")
                  for size in sizes}
        assert len(splits) == 1, wallpaper


def test_one_file_per_picture_keeps_the_largest_in_order(tmp_path):
    files = []
    for relative, size in (("Kite/contents/images/640x480.jpg", 10),
                           ("Kite/contents/images/1920x1080.jpg", 30), ("flow.jpg", 5),
                           ("Kite/contents/images/1280x1024.jpg", 20)):
        path = tmp_path / relative.replace("/", "_")
        path.write_bytes(b"x" * size)
        files.append(("plasma-wallpapers", relative, path))
    kept = render.one_file_per_picture(files)
    assert [relative for _, relative, _ in kept] == ["Kite/contents/images/1920x1080.jpg",
                                                     "flow.jpg"]


def test_background_splits_keep_whole_sources_out_of_training():
    assert render.background_split("sklearn", "china.jpg") == "held-out"
    assert render.background_split("lomiri-wallpapers-16.04", "Wine_by_Jakkub_Mede.jpg") == \
        "tuning-sources"
    training = render.library_splits("training").backgrounds
    for source in render.WHOLE_SOURCE_SPLITS:
        assert not set(render.source_splits(source)) & set(training)
    assert render.source_splits("mate-backgrounds") == ("training", "tuning")
    names = [f"w{i}.jpg" for i in range(300)]
    tuning = [n for n in names if render.background_split("mate-backgrounds", n) == "tuning"]
    assert 15 <= len(tuning) <= 45


def test_colour_boxes_find_a_red_target():
    frames, truth = [], []
    for t in range(5):
        bgr = np.full((100, 120, 3), (90, 140, 60), np.uint8)
        x, y = 10 + 5 * t, 20 + 2 * t
        bgr[y:y + 15, x:x + 30] = (30, 30, 150)          # dark red in BGR
        frames.append(bgr)
        truth.append([x, y, 30, 15])
    np.testing.assert_allclose(heldout.colour_boxes(frames), truth)


def test_background_boxes_follow_one_walker_and_stop_when_another_merges():
    background = np.full((120, 160, 3), 150, np.uint8)
    frames = []
    for t in range(12):
        bgr = background.copy()
        bgr[30:80, 20 + 3 * t:40 + 3 * t] = 20           # the walker, 20 x 50
        if t >= 8:
            bgr[30:80, 40 + 3 * t:60 + 3 * t] = 20       # a second one walks into him
        frames.append(bgr)
    boxes = heldout.background_boxes(frames, background.astype(np.int16), (20, 30, 20, 50))
    assert len(boxes) == 8
    np.testing.assert_allclose(boxes[7], [41, 30, 20, 50])


def test_crossing_set_records_a_look_alike_that_passes_the_target(tmp_path):
    from rbsf.data.synthetic import CROSSER_FILE
    from rbsf.eval.metrics import iou

    library = tiny_library(tmp_path)
    out = render.write_rendered_otb(tmp_path / "cross", library, 3, 40, seed=5,
                                    frame_size=(320, 240), split="tuning", crossing=True)
    assert json.loads((out / "dataset.json").read_text())["crossing"] is True
    for seq in load_sequences(str(out)):
        crosser = np.genfromtxt(out / seq.name / CROSSER_FILE, delimiter=",", ndmin=2)
        assert crosser.shape == (40, 4)
        seen = np.all(np.isfinite(crosser), axis=1)
        overlap = iou(seq.boxes[seen], crosser[seen])
        assert overlap.max() > 0          # it passes the target
    plain = render.write_rendered_otb(tmp_path / "plain", library, 1, 5, seed=5,
                                      frame_size=(160, 120), split="tuning")
    assert not list(plain.glob(f"*/{CROSSER_FILE}"))


@pytest.mark.parametrize("height,width", [(40, 120), (90, 90), (150, 50)])
def test_cutout_mask_is_a_soft_solid_shape_that_touches_every_side(height, width):
    alpha = render.cutout_mask(np.random.default_rng(height), height, width)
    assert alpha.shape == (height, width) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    solid = alpha > 0.5
    assert solid[0].any() and solid[-1].any() and solid[:, 0].any() and solid[:, -1].any()
    assert 0.4 < solid.mean() < 0.95                       # a blob, not the whole box or a sliver
    assert not solid[0, 0] and not solid[-1, -1]           # corners stay outside the shape
    assert ((alpha > 0.05) & (alpha < 0.95)).any()          # anti-aliased edge
    n, _ = cv2.connectedComponents(solid.astype(np.uint8))
    assert n == 2                                           # one piece (and the outside)


def test_cutouts_are_pieces_of_the_backgrounds_drawn_at_their_share(tmp_path):
    library = tiny_library(tmp_path)
    stamps_only = len(library.mattes)
    mixed = render.with_cutouts(library, 0.3, seed=7, count=20)
    assert len(mixed.mattes) == stamps_only + 20
    cut = mixed.mattes[stamps_only:]
    assert {m.category for m in cut} == {render.CUTOUT_CATEGORY}
    assert mixed.weights[stamps_only:].sum() == pytest.approx(0.3)
    assert np.allclose(mixed.weights[:stamps_only], library.weights * 0.7)
    for matte in cut:                                        # its box of the background, verbatim
        x, y, w, h = (int(v) for v in matte.name.rsplit("@", 1)[1].split(","))
        assert matte.name.startswith("cutout:bg.jpg@")
        assert np.array_equal(matte.rgb, library.backgrounds[0][y:y + h, x:x + w])
        assert matte.alpha.shape == (h, w) and max(h, w) >= 80
    again = render.with_cutouts(library, 0.3, seed=7, count=20)
    assert [m.name for m in again.mattes] == [m.name for m in mixed.mattes]
    rng = np.random.default_rng(0)
    for _ in range(10):                                      # a cut-out's look-alike is a cut-out
        sprite = render._look_alike(rng, mixed, stamps_only)
        assert any(sprite.texture.shape[:2] == m.rgb.shape[:2] for m in cut)
    assert render.with_cutouts(library, 0.0, seed=7) is library
    with pytest.raises(render.RenderError, match=r"share must be in \[0, 1\)"):
        render.with_cutouts(library, 1.0, seed=7)


def test_training_set_with_cutouts_renders_them_and_says_so(tmp_path):
    library = render.with_cutouts(tiny_library(tmp_path), 0.5, seed=3, count=10)
    out = render.write_real_dataset(tmp_path / "real", library, {}, 6, 0, 5, seed=1,
                                    frame_size=(200, 150))
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["cutouts"] == {"count": 10, "share": 0.5}
    assert not any(name.startswith("cutout:") for name in manifest["stamps"])
    assert len(load_sequences(str(out))) == 6
