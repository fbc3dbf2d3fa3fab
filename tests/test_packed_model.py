"""Packed model file: export / load round trip, same responses and tracker boxes as the
float-emulated binary model, file size, clear errors, and the export tool."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rbsf.checkpoint import CheckpointError, load_model, model_payload
from rbsf.deploy import PackedSiamFC, native, pack_model, save_packed
from rbsf.files import save_atomic
from rbsf.models.siamfc import SiamFCNet
from trackers.registry import build_tracker

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "data" / "sample" / "clip.mp4"
GROUNDTRUTH = ROOT / "data" / "sample" / "clip_groundtruth.txt"
BACKENDS = ["torch"] + (["native"] if native.supported_isas() else [])


def _binary_net(kind, width=0.25, seed=0):
    """A small binary SiamFC with non-trivial BN statistics (negative scales included)."""
    torch.manual_seed(seed)
    net = SiamFCNet(kind, width=width)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 3)
            m.running_var.uniform_(0.5, 5)
            m.weight.data.uniform_(-2, 2)
            m.bias.data.normal_()
    return net.eval()


def _pair(seed=1, search=2):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, 127, 127, generator=gen) * 255,
            torch.rand(search, 3, 255, 255, generator=gen) * 255)


@pytest.mark.parametrize("kind", ["rbconv", "xnor"])
def test_round_trip_gives_the_emulated_response(tmp_path, kind):
    net = _binary_net(kind)
    path = tmp_path / "packed.pt"
    save_packed(net, path)
    packed = load_model(path)
    assert isinstance(packed, PackedSiamFC) and packed.kind == kind
    z, x = _pair()
    with torch.no_grad():
        expected = net(z, x)
    for backend in BACKENDS:
        packed.backend = backend
        out = packed(z, x)
        assert out.shape == expected.shape == (2, 1, 17, 17)
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5 * expected.abs().max())


def test_batch_norm_before_pooling_is_folded_too():
    """Blocks ordered conv -> BN -> pool (BN folded into the conv) pack as exactly as the
    default conv -> pool -> BN (BN kept as a pending affine map)."""
    net = _binary_net("rbconv", seed=5)
    for name in ("conv1", "conv2"):
        block = getattr(net.backbone, name)
        modules = dict(block.named_children())
        setattr(net.backbone, name, torch.nn.Sequential(modules["0"], modules["1"], modules["3"]))
    packed = pack_model(net)
    assert packed.conv1_post == [("pool",)] and packed.layers[0].post == [("pool",)]
    z, x = _pair()
    with torch.no_grad():
        expected = net(z, x)
    torch.testing.assert_close(packed(z, x), expected, rtol=1e-4,
                               atol=1e-5 * expected.abs().max())


def test_backends_agree_on_embeddings():
    packed = pack_model(_binary_net("rbconv"))
    _, x = _pair(search=1)
    embeddings = []
    for backend in BACKENDS:
        packed.backend = backend
        embeddings.append(packed.backbone(x))
    for other in embeddings[1:]:
        torch.testing.assert_close(other, embeddings[0], rtol=1e-5, atol=1e-5)


def _frames(n=6):
    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < n:
        ok, frame = capture.read()
        assert ok, f"cannot read {VIDEO}"
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return frames


def test_tracker_boxes_identical_on_the_sample_clip(tmp_path):
    net = _binary_net("rbconv", seed=3)
    save_atomic(model_payload(net), tmp_path / "rbsf.pt")
    save_packed(net, tmp_path / "packed.pt")
    frames = _frames()
    box = np.loadtxt(GROUNDTRUTH, delimiter=",")[0]
    runs = []
    for name, file in (("rbsf", "rbsf.pt"), ("packed", "packed.pt")):
        tracker = build_tracker(name, tmp_path / file)
        tracker.init(frames[0], box)
        runs.append(np.array([tracker.update(f) for f in frames[1:]]))
    assert tracker.name == "RB-SF packed"
    np.testing.assert_array_equal(runs[0], runs[1])


def test_full_width_file_is_small(tmp_path):
    net = SiamFCNet("rbconv")
    save_atomic(model_payload(net), tmp_path / "full.pt")
    save_packed(net, tmp_path / "packed.pt")
    size = (tmp_path / "packed.pt").stat().st_size
    assert size <= 500_000
    assert (tmp_path / "full.pt").stat().st_size / size >= 18


def test_unpackable_models_are_refused():
    with pytest.raises(ValueError, match="kind xnor or rbconv"):
        pack_model(SiamFCNet("fp", width=0.25))
    with pytest.raises(ValueError, match="c_mode 'matrix'"):
        pack_model(SiamFCNet("rbconv", c_mode="matrix", width=0.25))


def test_malformed_packed_file_gives_checkpoint_error(tmp_path):
    payload = pack_model(_binary_net("xnor")).payload()
    del payload["layers"][0]["bits"]
    save_atomic(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="malformed"):
        load_model(tmp_path / "bad.pt")


def _tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "export.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_export_tool(tmp_path):
    net = _binary_net("rbconv")
    save_atomic(model_payload(net), tmp_path / "rbsf.pt")
    done = _tool(tmp_path / "rbsf.pt", tmp_path / "out.pt")
    assert done.returncode == 0, done.stderr
    assert "smaller" in done.stdout and "difference" in done.stdout
    z, x = _pair(search=1)
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "out.pt")(z, x), net(z, x),
                                   rtol=1e-4, atol=1e-6)

    save_atomic(model_payload(SiamFCNet("fp", width=0.25)), tmp_path / "fp.pt")
    done = _tool(tmp_path / "fp.pt", tmp_path / "x.pt")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "kind xnor or rbconv" in done.stderr
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("mode", ["fp32", "int8"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_uint8_and_float_images_give_the_same_embedding(mode, backend):
    packed = pack_model(_binary_net("rbconv", seed=4))
    packed.conv1_mode, packed.backend = mode, backend
    pixels = torch.randint(0, 256, (2, 87, 87, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(2)).permute(0, 3, 1, 2)
    assert torch.equal(packed.backbone(pixels), packed.backbone(pixels.float()))
