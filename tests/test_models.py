"""SiamFC networks and classification backbones of every kind."""
import numpy as np
import pytest
import torch

from rbsf.binary import QuantConv2d, RBConv2d, XNORConv2d
from rbsf.models import SiamFCNet, build_backbone
from rbsf.models.siamfc import TAP_LAYERS

KIND_CLASS = {"xnor": XNORConv2d, "rbconv": RBConv2d}


@pytest.mark.parametrize("kind", ["fp", "xnor", "rbconv"])
def test_siamfc_shapes_and_binarized_layers(kind):
    net = SiamFCNet(kind).eval()
    z = torch.rand(2, 3, 127, 127) * 255
    with torch.no_grad():
        assert net(z, torch.rand(2, 3, 255, 255) * 255).shape == (2, 1, 17, 17)
        assert net(z, torch.rand(2, 3, 239, 239) * 255).shape == (2, 1, 15, 15)
        assert net.backbone(z).shape == (2, 256, 6, 6)
    binary = [name for name, m in net.named_modules() if isinstance(m, QuantConv2d)]
    if kind == "fp":
        assert binary == []
    else:
        assert binary == [f"backbone.{n}.0" for n in TAP_LAYERS]
        assert all(isinstance(net.get_submodule(n), KIND_CLASS[kind]) for n in binary)
        assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules())
    assert type(net.backbone.conv1[0]) is torch.nn.Conv2d


def test_fp_parameter_count_matches_siamfc_alexnet():
    count = sum(p.numel() for p in SiamFCNet("fp").parameters())
    assert count == 2_336_320  # ~2.33 M, as siamfc-pytorch's AlexNetV1


@pytest.mark.parametrize("kind", ["fp", "rbconv"])
def test_forward_taps_match_forward_and_give_each_binarized_layer(kind):
    torch.manual_seed(0)
    net = SiamFCNet(kind, width=0.25).eval()
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        response, taps = net.forward_taps(z, x)
        assert torch.allclose(response, net(z, x))
    assert list(taps) == list(TAP_LAYERS)
    assert taps["conv5"][0].shape[-1] == 6 and taps["conv5"][1].shape[-1] == 22


def siamfc_pytorch_state_dict(seed: int = 0):
    """A state dict in the public siamfc-pytorch key layout, written by hand (no shared code)."""
    g = torch.Generator().manual_seed(seed)
    spec = [("conv1", 3, 96, 11, 1, True), ("conv2", 96, 256, 5, 2, True),
            ("conv3", 256, 384, 3, 1, True), ("conv4", 384, 384, 3, 2, True),
            ("conv5", 384, 256, 3, 2, False)]
    state = {}
    for name, cin, cout, k, groups, bn in spec:
        state[f"backbone.{name}.0.weight"] = torch.randn(cout, cin // groups, k, k,
                                                         generator=g) * 0.05
        state[f"backbone.{name}.0.bias"] = torch.randn(cout, generator=g) * 0.1
        if bn:
            state[f"backbone.{name}.1.weight"] = torch.rand(cout, generator=g) + 0.5
            state[f"backbone.{name}.1.bias"] = torch.randn(cout, generator=g) * 0.1
            state[f"backbone.{name}.1.running_mean"] = torch.randn(cout, generator=g)
            state[f"backbone.{name}.1.running_var"] = torch.rand(cout, generator=g) + 0.5
            state[f"backbone.{name}.1.num_batches_tracked"] = torch.tensor(100)
    return state


def reference_forward(state, z, x):
    """The siamfc-pytorch AlexNetV1 forward written out with functional ops."""
    import torch.nn.functional as F

    def embed(t):
        for name, stride, groups, pool in [("conv1", 2, 1, True), ("conv2", 1, 2, True),
                                           ("conv3", 1, 1, False), ("conv4", 1, 2, False),
                                           ("conv5", 1, 2, False)]:
            p = f"backbone.{name}."
            t = F.conv2d(t, state[p + "0.weight"], state[p + "0.bias"], stride, groups=groups)
            if name != "conv5":
                t = F.batch_norm(t, state[p + "1.running_mean"], state[p + "1.running_var"],
                                 state[p + "1.weight"], state[p + "1.bias"], False, 0.0, 1e-6)
                t = F.relu(t)
            if pool:
                t = F.max_pool2d(t, 3, 2)
        return t

    ez, ex = embed(z), embed(x)
    return torch.stack([F.conv2d(ex[i:i + 1], ez[i:i + 1]) for i in range(z.size(0))])[:, 0] * 1e-3


def test_loads_siamfc_pytorch_layout_and_reproduces_its_outputs():
    state = siamfc_pytorch_state_dict()
    net = SiamFCNet("fp").eval()
    net.load_teacher_state(state)
    z, x = torch.rand(2, 3, 127, 127) * 255, torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        assert torch.allclose(net(z, x), reference_forward(state, z, x), rtol=1e-4, atol=1e-5)


def test_binary_student_initialised_from_teacher_state():
    state = siamfc_pytorch_state_dict(1)
    net = SiamFCNet("rbconv")
    net.load_teacher_state(state)
    w = state["backbone.conv3.0.weight"]
    assert torch.equal(net.backbone.conv3[0].weight.detach(), w)
    assert torch.allclose(net.backbone.conv3[0].C, w.abs().mean(dim=0))


def test_binary_conv_inputs_hold_both_signs_on_real_images():
    """The block-order trap: every binary conv must see a healthy mix of -1 and +1."""
    import cv2
    from pathlib import Path
    photos = sorted(Path(__file__).resolve().parents[2].joinpath("shared/data/photos")
                    .glob("*.jpg"))
    if not photos:
        photos = sorted(Path(__file__).resolve().parents[1].joinpath("data/photos").glob("*.jpg"))
    images = [cv2.resize(cv2.imread(str(p))[:, :, ::-1], (255, 255)) for p in photos[:4]]
    x = torch.tensor(np.stack(images), dtype=torch.float32).permute(0, 3, 1, 2)
    torch.manual_seed(0)
    net = SiamFCNet("rbconv").train()  # batch statistics, as in training
    seen = {}
    hooks = [m.register_forward_pre_hook(lambda m, inp, n=n: seen.__setitem__(n, inp[0]))
             for n, m in net.named_modules() if isinstance(m, QuantConv2d)]
    with torch.no_grad():
        net.backbone(x)
    for h in hooks:
        h.remove()
    assert len(seen) == 4
    for name, inp in seen.items():
        positive = (inp >= 0).float().mean().item()
        assert 0.2 < positive < 0.8, f"{name}: share of +1 inputs {positive:.2f}"


BACKBONE_CASES = [
    ("resnet18", (32, 32, 64, 128), 10, 32),
    ("resnet18", (32, 64, 128, 256), 100, 32),
    ("resnet18", (64, 64, 128, 256), 10, 32),
    ("wrn22", (16, 16, 32, 64), 10, 32),
    ("wrn40", (16, 16, 32, 64), 100, 32),
]


@pytest.mark.parametrize("kind", ["fp", "xnor", "rbconv", "bireal"])
@pytest.mark.parametrize("name,stages,classes,size", BACKBONE_CASES)
def test_backbones_build_and_train_one_step(name, stages, classes, size, kind):
    torch.manual_seed(0)
    net = build_backbone(name, kind, stages, num_classes=classes)
    x = torch.randn(2, 3, size, size)
    logits, taps = net.forward_taps(x)
    assert logits.shape == (2, classes)
    n_binary = sum(isinstance(m, QuantConv2d) for m in net.modules())
    assert n_binary == (0 if kind == "fp" else len(taps))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grads = [m.weight.grad for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads[1:])


def test_resnet18_imagenet_shapes():
    net = build_backbone("resnet18", "rbconv", (64, 128, 256, 512), num_classes=1000).eval()
    with torch.no_grad():
        logits, taps = net.forward_taps(torch.randn(1, 3, 224, 224))
    assert logits.shape == (1, 1000)
    assert taps["unit15"].shape == (1, 512, 7, 7)
    assert len(taps) == 16


@pytest.mark.parametrize("kind", ["fp", "bireal"])
def test_digit_backbone_rebuilds_from_its_config_and_taps_the_signed_bn_output(kind):
    torch.manual_seed(0)
    net = build_backbone("resnet18", kind, (8, 8, 16, 16), num_classes=10, in_channels=1).eval()
    x = torch.randn(3, 1, 28, 28)                 # 28 -> 14 -> 7 -> 4: odd sizes downsample
    with torch.no_grad():
        logits, taps = net.forward_taps(x)
        twin = build_backbone(**net.config())
        twin.load_state_dict(net.state_dict())
        assert torch.equal(twin.eval()(x), logits)
        unit = net.units[0]
        assert torch.equal(taps["unit0"], unit.bn(unit.conv(net.stem(x))))
    assert logits.shape == (3, 10) and taps["unit15"].shape == (3, 16, 4, 4)
    assert net.tap_channels() == {name: t.shape[1] for name, t in taps.items()}
    assert (taps["unit3"] < 0).any() and (taps["unit3"] > 0).any()
