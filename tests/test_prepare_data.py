"""tools/prepare_data.py and benchmarks/classical_trackers.py on tiny stand-ins of the sources.

The sources are never fetched here: a folder laid out like the unpacked Debian package stands
in for ``apt-get download`` + ``dpkg -x``, through the tool's own ``--from NAME=DIR``.
"""
import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from rbsf.data import load_sequences, pack, render, sources, stamps
from tests.test_render import _disc, _png, make_stamps
from tools import prepare_data
from tools.cli import run_tool

REPO = Path(__file__).resolve().parents[1]
CONTRIB = Path("/work/venvs/contrib/bin/python")
QT_FIXTURES = REPO / "tests" / "fixtures" / "qt_resources"


def fake_packages(tmp_path: Path) -> dict:
    """Unpacked-package stand-ins: the stamps package tree and one wallpaper package."""
    stamps_pkg = tmp_path / "pkg-stamps"
    make_stamps(stamps_pkg / "usr/share/tuxpaint/stamps")
    (stamps_pkg / "usr/share/doc/tuxpaint-stamps-default").mkdir(parents=True)
    (stamps_pkg / "usr/share/doc/tuxpaint-stamps-default/copyright").write_text("GPL-2\n")
    walls = tmp_path / "pkg-walls" / "usr/share/backgrounds/mate/desktop"
    walls.mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(walls / "wall.jpg"),
                cv2.resize(rng.integers(0, 256, (30, 40, 3)).astype(np.uint8), (2400, 1800)))
    (walls / "notes.xml").write_text("<x/>")
    return {"tuxpaint-stamps": stamps_pkg, "mate-backgrounds": tmp_path / "pkg-walls"}


def test_status_lists_every_missing_source_with_how_to_fetch_it(tmp_path, capsys):
    assert run_tool(prepare_data.main, ["--cache", str(tmp_path), "status"]) == 0
    out = capsys.readouterr().out
    for name in sources.SOURCES:
        assert f"missing  {name}" in out
    assert "apt-get download tuxpaint-stamps-default" in out


def fetch_from(folders: dict, cache: Path) -> None:
    argv = ["--cache", str(cache), "fetch"] + list(folders)
    for name, folder in folders.items():
        argv += ["--from", f"{name}={folder}"]
    assert run_tool(prepare_data.main, argv) == 0


def test_fetch_from_folders_then_stamps_then_train(tmp_path, capsys):
    cache = tmp_path / "cache"
    fetch_from(fake_packages(tmp_path), cache)
    meta = json.loads((cache / "mate-backgrounds/source.json").read_text())
    assert meta["files"] == 1 and meta["role"] == "backgrounds"
    wall = cv2.imread(str(cache / "mate-backgrounds/files/desktop/wall.jpg"))
    assert max(wall.shape[:2]) == sources.MAX_BACKGROUND_SIDE
    assert "GPL-2" in (cache / "tuxpaint-stamps/COPYRIGHT").read_text()
    assert not list(cache.glob(".*"))                        # no temporary folder left

    sheet = tmp_path / "sheet.png"
    assert run_tool(prepare_data.main,
                    ["--cache", str(cache), "stamps", "--sheet", str(sheet)]) == 0
    assert cv2.imread(str(sheet)) is not None
    out = tmp_path / "real"
    code = run_tool(prepare_data.main, ["--cache", str(cache), "train", "--out", str(out),
                                        "--sequences", "2", "--frames", "6", "--size", "160x120",
                                        "--tracks-per-video", "0", "--cutouts", "0.5"])
    assert code == 0
    assert len(load_sequences(str(out))) == 2
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["reserved_splits"] == []
    assert manifest["cutouts"] == {"count": render.CUTOUT_COUNT, "share": 0.5}
    assert f"and {render.CUTOUT_COUNT} cut-outs" in capsys.readouterr().out
    assert "skvideo" not in capsys.readouterr().err
    val = tmp_path / "val"
    assert run_tool(prepare_data.main, ["--cache", str(cache), "val", "--out", str(val),
                                        "--sequences", "1", "--frames", "4",
                                        "--size", "160x120"]) == 0
    assert [s.name for s in load_sequences(str(val))] == ["Val0001"]
    assert "(training split)" in capsys.readouterr().out


def test_tuning_split_is_its_own_and_a_reserving_training_set_leaves_it_out(tmp_path, capsys):
    folders = fake_packages(tmp_path)
    mammals = folders["tuxpaint-stamps"] / "usr/share/tuxpaint/stamps/animals/mammals"
    shutil.copy(mammals / "dog0.png", mammals / "dog5.png")
    walls = folders["mate-backgrounds"] / "usr/share/backgrounds/mate/desktop"
    shutil.copy(walls / "wall.jpg", walls / "wall7.jpg")
    assert render.stamp_split("animals/mammals/dog5.png") == "tuning"
    assert render.background_split("mate-backgrounds", "desktop/wall7.jpg") == "tuning"
    assert render.background_split("mate-backgrounds", "desktop/wall.jpg") == "training"
    cache = tmp_path / "cache"
    fetch_from(folders, cache)
    assert run_tool(prepare_data.main, ["--cache", str(cache), "stamps"]) == 0

    def drawn_from(split: str, reserved: tuple) -> tuple:
        lib = prepare_data.library(cache, split, reserved)
        return "animals/mammals/dog5.png" in {m.name for m in lib.mattes}, len(lib.backgrounds)

    assert drawn_from("training", ()) == (True, 2)          # as the shipped set was built
    assert drawn_from("training", ("tuning",)) == (False, 1)
    tuning = prepare_data.library(cache, "tuning")
    assert [m.name for m in tuning.mattes] == ["animals/mammals/dog5.png"]
    assert len(tuning.backgrounds) == 1

    out = tmp_path / "real"
    assert run_tool(prepare_data.main, ["--cache", str(cache), "train", "--reserve-tuning",
                                        "--out", str(out), "--sequences", "2", "--frames", "4",
                                        "--size", "160x120", "--tracks-per-video", "0"]) == 0
    manifest = json.loads((out / "dataset.json").read_text())
    assert "animals/mammals/dog5.png" not in manifest["stamps"]
    assert manifest["reserved_splits"] == ["tuning"]
    assert "tuning split reserved" in capsys.readouterr().out
    crossings = tmp_path / "crossings"
    assert run_tool(prepare_data.main, ["--cache", str(cache), "tuning", "--crossing",
                                        "--out", str(crossings), "--sequences", "1",
                                        "--frames", "4", "--size", "160x120"]) == 0
    assert len((crossings / "Tune0001" / "crosser_rect.txt").read_text().splitlines()) == 4
    tune = tmp_path / "tune"
    assert run_tool(prepare_data.main, ["--cache", str(cache), "tuning", "--out", str(tune),
                                        "--sequences", "1", "--frames", "4",
                                        "--size", "160x120"]) == 0
    assert [s.name for s in load_sequences(str(tune))] == ["Tune0001"]
    assert json.loads((tune / "dataset.json").read_text())["stamps"] == ["animals/mammals/dog5.png"]


def test_tuning_sources_render_alone_and_never_reach_training(tmp_path, capsys):
    folders = fake_packages(tmp_path)
    mammals = folders["tuxpaint-stamps"] / "usr/share/tuxpaint/stamps/animals/mammals"
    shutil.copy(mammals / "dog0.png", mammals / "dog5.png")            # a tuning stamp
    walls = folders["mate-backgrounds"] / "usr/share/backgrounds/mate/desktop"
    shutil.copy(walls / "wall.jpg", walls / "wall7.jpg")                # a tuning background
    lomiri = tmp_path / "pkg-lomiri" / "usr/share/backgrounds"
    lomiri.mkdir(parents=True)
    cv2.imwrite(str(lomiri / "hills.jpg"), np.full((300, 400, 3), (40, 160, 90), np.uint8))
    folders["lomiri-wallpapers-16.04"] = tmp_path / "pkg-lomiri"
    cache = tmp_path / "cache"
    fetch_from(folders, cache)
    assert run_tool(prepare_data.main, ["--cache", str(cache), "stamps"]) == 0
    for split in ("training", "tuning"):
        names = prepare_data.library(cache, split).background_names
        assert not [n for n in names if n.startswith("lomiri")], split
    with pytest.raises(render.RenderError, match="fetch ukui-wallpapers sklearn$"):
        prepare_data.library(cache, "held-out")
    assert prepare_data.library(cache, "tuning-sources").background_names == \
        ["lomiri-wallpapers-16.04/hills.jpg"]
    assert "lomiri-wallpapers-16.04" in prepare_data.tuning_sources()
    capsys.readouterr()
    out = tmp_path / "tune-new"
    assert run_tool(prepare_data.main, ["--cache", str(cache), "tuning", "--new-sources",
                                        "--out", str(out), "--sequences", "1", "--frames", "4",
                                        "--size", "160x120"]) == 0
    assert "lomiri-wallpapers-20.04" in capsys.readouterr().err    # not cached: said, not fatal
    assert [s.name for s in load_sequences(str(out))] == ["TuneSrc0001"]
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["kind"] == "rbsf.data.render tuning-sources set"
    assert manifest["stamps"] == ["animals/mammals/dog5.png"]
    assert manifest["backgrounds"] == {"TuneSrc0001": "lomiri-wallpapers-16.04/hills.jpg"}


def test_pack_holds_what_train_draws_from_and_renders_like_the_cache(tmp_path, capsys):
    folders = fake_packages(tmp_path)
    mammals = folders["tuxpaint-stamps"] / "usr/share/tuxpaint/stamps/animals/mammals"
    shutil.copy(mammals / "dog0.png", mammals / "dog5.png")           # the tuning split
    cache = tmp_path / "cache"
    fetch_from(folders, cache)
    assert run_tool(prepare_data.main, ["--cache", str(cache), "stamps"]) == 0
    packed = tmp_path / "pack"
    assert run_tool(prepare_data.main, ["--cache", str(cache), "pack", "--reserve-tuning",
                                        "--out", str(packed), "--background-side", "200",
                                        "--stamp-side", "60"]) == 0
    assert "--reserve-tuning" in capsys.readouterr().out

    assert render.stamp_split("animals/mammals/cat.png") == "held-out"
    kept = {f"animals/mammals/dog{k}.png" for k in range(4)}
    index = stamps.load_index(packed / "tuxpaint-stamps" / stamps.INDEX_NAME)
    # no tuning, held-out, dropped or svg stamp
    assert {i.path for i in index} == kept
    files = sorted(p.relative_to(packed / "tuxpaint-stamps/files").as_posix()
                   for p in (packed / "tuxpaint-stamps/files").rglob("*") if p.is_file())
    assert files == sorted(kept)
    rgb, alpha = stamps.read_stamp(packed / "tuxpaint-stamps/files/animals/mammals/dog0.png")
    assert max(alpha.shape) == 60 and alpha.max() == 1.0
    wall = cv2.imread(str(packed / "mate-backgrounds/files/desktop/wall.jpg"))
    assert max(wall.shape[:2]) == 200
    meta = json.loads((packed / "mate-backgrounds/source.json").read_text())
    assert meta["files"] == 1 and meta["version"] == "unknown" and "pack" in meta["how"]
    assert (packed / "mate-backgrounds/COPYRIGHT").read_text() == \
        (cache / "mate-backgrounds/COPYRIGHT").read_text()
    assert sorted(p.name for p in packed.iterdir()) == ["mate-backgrounds", "tuxpaint-stamps"]

    boxes = {}
    for name, source in (("pack", packed), ("cache", cache)):
        out = tmp_path / f"real-{name}"
        assert run_tool(prepare_data.main, ["--cache", str(source), "train", "--reserve-tuning",
                                            "--out", str(out), "--sequences", "2", "--frames",
                                            "6", "--size", "160x120", "--tracks-per-video",
                                            "0"]) == 0
        boxes[name] = np.concatenate([s.boxes for s in load_sequences(str(out))])
    assert np.abs(boxes["pack"] - boxes["cache"]).max() <= 1   # the same draws, resampled
    capsys.readouterr()

    code = run_tool(prepare_data.main, ["--cache", str(packed), "tuning", "--out",
                                        str(tmp_path / "tune"), "--sequences", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no kept stamp in the tuning split" in err[0]
    code = run_tool(prepare_data.main, ["--cache", str(cache), "pack", "--out", str(packed)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not empty" in err[0]


def test_a_packed_stamp_keeps_its_edge_colour_when_shrunk(tmp_path):
    """White disc on black transparent pixels: shrinking colour and alpha apart would grey its
    edge; the pack shrinks the colour weighted by alpha."""
    cache = tmp_path / "cache"
    root = cache / "tuxpaint-stamps" / "files"
    disc = _disc(80)
    black_under_transparent = np.where(disc[..., None] > 0, 255, 0) * np.ones((1, 1, 3))
    _png(root / "food" / "ball.png", black_under_transparent, disc)
    (cache / "tuxpaint-stamps" / "COPYRIGHT").write_text("GPL-2\n")
    (cache / "tuxpaint-stamps" / "source.json").write_text(json.dumps({"how": "a test"}))
    info = stamps.StampInfo("food/ball.png", "food", 80, 80, 4000, 0.0, 50.0, False, 1.0, "photo")
    pack.write_pack(cache, tmp_path / "pack", [info], [], [], stamp_side=20)
    rgb, alpha = stamps.read_stamp(tmp_path / "pack/tuxpaint-stamps/files/food/ball.png")
    edge = (alpha > 0.1) & (alpha < 0.9)
    assert edge.sum() > 10
    assert rgb[edge].min() >= 250


def test_train_without_stamps_is_one_error_line(tmp_path, capsys):
    code = run_tool(prepare_data.main, ["--cache", str(tmp_path), "train", "--out",
                                        str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "fetch tuxpaint-stamps" in err[0]
    assert not (tmp_path / "out").exists()


def test_fetch_of_an_unknown_source_is_refused(tmp_path, capsys):
    assert run_tool(prepare_data.main, ["--cache", str(tmp_path), "fetch", "nope"]) == 2
    assert "unknown source 'nope'" in capsys.readouterr().err


def test_fetch_from_a_folder_that_does_not_exist_is_refused_before_fetching(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    code = run_tool(prepare_data.main, ["--cache", str(tmp_path / "cache"), "fetch", "skimage",
                                        "--from", f"tuxpaint-templates={missing}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "tuxpaint-templates" in err[0] and str(missing) in err[0] and "no such folder" in err[0]
    assert not (tmp_path / "cache").exists()


def _gcompris_package(tmp_path: Path, rcc: str) -> Path:
    """An unpacked gcompris-qt-data stand-in whose erase activity is the fixture ``rcc``."""
    package = tmp_path / "pkg-gcompris"
    folder = package / "usr/share/gcompris-qt/rcc"
    folder.mkdir(parents=True)
    shutil.copy(QT_FIXTURES / rcc, folder / "erase.rcc")
    shutil.copy(QT_FIXTURES / rcc, folder / "menu.rcc")          # not a photo activity
    (package / "usr/share/doc/gcompris-qt-data").mkdir(parents=True)
    (package / "usr/share/doc/gcompris-qt-data/copyright").write_text("GPL-3+\n")
    return package


def test_pictures_inside_qt_resource_files_are_fetched_with_their_credits(tmp_path, capsys):
    cache = tmp_path / "cache"
    fetch_from({"gcompris-photos": _gcompris_package(tmp_path, "zoo-v3.rcc")}, cache)
    folder = sources.source_dir("gcompris-photos", cache)
    assert [sources.relative_name("gcompris-photos", f, cache) for f in
            sources.files("gcompris-photos", cache)] == [
        "gcompris/src/activities/zoo/resource/animals/okapi.jpg"]   # the webp, not png or qml
    okapi = QT_FIXTURES / "src/activities/zoo/resource/animals/okapi.webp"
    stored = cv2.imread(str(sources.files("gcompris-photos", cache)[0]))
    assert stored.shape == cv2.imread(str(okapi)).shape
    copyright = (folder / "COPYRIGHT").read_text()
    assert "GPL-3+" in copyright and "Copyright: a photographer" in copyright
    assert json.loads((folder / "source.json").read_text())["files"] == 1
    assert render.background_split("gcompris-photos", "gcompris/a/okapi.jpg") in (
        "training", "tuning")


def test_a_zstd_resource_file_is_named_and_nothing_cached(tmp_path, capsys):
    """Like any source that cannot be had, it is reported and the others go on (exit 0)."""
    package = _gcompris_package(tmp_path, "zoo-zstd.rcc")
    fetch_from({"gcompris-photos": package}, tmp_path / "cache")
    err = capsys.readouterr().err
    assert "not fetched gcompris-photos: " in err and "Zoo.qml is zstd-compressed" in err
    assert not sources.is_present("gcompris-photos", tmp_path / "cache")


def _classical_trackers():
    spec = importlib.util.spec_from_file_location("classical_trackers",
                                                  REPO / "benchmarks" / "classical_trackers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not CONTRIB.is_file(),
                    reason="no opencv-contrib environment at /work/venvs/contrib")
def test_classical_peer_results_land_in_the_report_layout(tmp_path):
    sample = load_sequences(str(REPO / "data" / "sample" / "otb"))[0]
    root = tmp_path / "otb"
    (root / sample.name / "img").mkdir(parents=True)
    for frame in sample.frames[:10]:
        shutil.copy(frame, root / sample.name / "img")
    np.savetxt(root / sample.name / "groundtruth_rect.txt", sample.boxes[:10], fmt="%.0f",
               delimiter=",")
    code = run_tool(_classical_trackers().main,
                    ["--root", str(root), "--dataset", "custom", "--trackers", "KCF",
                     "--result-dir", str(tmp_path / "results"),
                     "--report-dir", str(tmp_path / "reports")])
    assert code == 0
    boxes = np.loadtxt(tmp_path / "results/custom/KCF" / f"{sample.name}.txt", delimiter=",")
    assert boxes.shape == (10, 4)
    np.testing.assert_allclose(boxes[0], sample.boxes[0], atol=0.5)
    assert (tmp_path / "results/custom/KCF/times" / f"{sample.name}_time.txt").is_file()
    summary = json.loads((tmp_path / "reports/custom/summary.json").read_text())
    assert 0.0 <= summary["trackers"]["KCF"]["success_auc"] <= 1.0
    assert summary["peers_opencv_version"].startswith(("4.", "5."))


@pytest.mark.parametrize("value", ["1", "-0.1", "nan", "lots"])
def test_a_bad_cutout_share_is_one_error_line(tmp_path, capsys, value):
    code = run_tool(prepare_data.main, ["--cache", str(tmp_path), "train", "--out",
                                        str(tmp_path / "out"), "--cutouts", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "--cutouts" in err[-1] and "expected a share in [0, 1)" in err[-1]
    assert not (tmp_path / "out").exists()
