"""Packed binary convolution: exact against the float convolution of +-1 tensors, every ISA;
the native real-valued stem convolution: PyTorch's up to float rounding, the same on every ISA."""
import pytest
import torch
import torch.nn.functional as F

from rbsf.binary import hard_sign
from rbsf.deploy import engine, native
from rbsf.deploy.engine import (BinaryLayer, apply_post, binary_conv, int8_conv, pack_weight,
                               quantize_weight, real_conv)

ISAS = native.supported_isas()
needs_native = pytest.mark.skipif(not ISAS, reason="native engine not compiled")

# (in, out, kernel, stride, padding, groups, height, width)
SHAPES = [
    (3, 5, 3, 1, 1, 1, 7, 6),
    (65, 9, 3, 2, 0, 1, 9, 10),
    (130, 34, 1, 1, 2, 2, 5, 5),
    (96, 64, 5, 1, 0, 2, 11, 9),
    (200, 17, 3, 2, 1, 1, 8, 8),
    (1, 1, 1, 1, 0, 1, 1, 1),
]


def _layer(cin, cout, k, stride, pad, groups, gen, affine=False):
    negative = torch.rand(cout, cin // groups, k, k, generator=gen) < 0.5
    if affine:
        scale, shift = torch.randn(cout, generator=gen), torch.randn(cout, generator=gen)
    else:
        scale, shift = torch.ones(cout), torch.zeros(cout)
    return BinaryLayer("test", cin, cout, k, stride, pad, groups, negative, scale, shift)


def _oracle(x_nhwc, layer):
    """Float convolution of the +1-padded sign of x with the +-1 weights (NHWC out)."""
    p = layer.padding
    signs = F.pad(hard_sign(x_nhwc.permute(0, 3, 1, 2)), (p, p, p, p), value=1.0)
    weight = torch.where(layer.negative, -1.0, 1.0)
    out = F.conv2d(signs.double(), weight.double(), stride=layer.stride, groups=layer.groups)
    return out.permute(0, 2, 3, 1)


def _backends():
    return [("torch", None)] + [("native", isa) for isa in ISAS]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("backend,isa", _backends())
def test_packed_conv_equals_float_conv_of_signs(shape, backend, isa):
    cin, cout, k, stride, pad, groups, h, w = shape
    gen = torch.Generator().manual_seed(sum(shape))
    layer = _layer(cin, cout, k, stride, pad, groups, gen)
    x = torch.randn(2, h, w, cin, generator=gen)
    x[0, 0, 0, :] = 0.0  # sign(0) = +1, like the padding
    out = binary_conv(x, layer, backend=backend, isa=isa, threads=2)
    expected = _oracle(x, layer)
    assert out.shape == expected.shape
    assert torch.equal(out.double(), expected)


@needs_native
@pytest.mark.parametrize("isa", ISAS)
def test_every_isa_equals_scalar_with_affine_and_pending_ops(isa):
    gen = torch.Generator().manual_seed(7)
    layer = _layer(130, 70, 3, 1, 1, 2, gen, affine=True)
    pre = [("pool",), ("affine", torch.randn(130, generator=gen), torch.randn(130, generator=gen))]
    x = torch.randn(3, 13, 12, 130, generator=gen)
    scalar = binary_conv(x, layer, pre, backend="native", isa="scalar", threads=1)
    assert torch.equal(binary_conv(x, layer, pre, backend="native", isa=isa, threads=2), scalar)
    torch.testing.assert_close(binary_conv(x, layer, pre, backend="torch"), scalar,
                               rtol=1e-6, atol=1e-5)


@needs_native
def test_thread_counts_give_identical_results():
    gen = torch.Generator().manual_seed(11)
    layer = _layer(96, 40, 5, 1, 0, 2, gen, affine=True)
    x = torch.randn(2, 15, 14, 96, generator=gen)
    single = binary_conv(x, layer, [("pool",)], backend="native", threads=1)
    for threads in (2, 3, 8, 2):
        assert torch.equal(binary_conv(x, layer, [("pool",)], backend="native",
                                       threads=threads), single)


# (in, out, kernel, stride, height, width): SiamFC's conv1, channel tails, odd sizes
REAL_SHAPES = [(3, 96, 11, 2, 41, 38), (3, 24, 11, 2, 30, 27), (3, 5, 3, 1, 6, 9),
               (4, 130, 2, 3, 8, 8), (1, 1, 1, 1, 1, 1)]


@pytest.mark.parametrize("shape", REAL_SHAPES)
def test_real_conv_equals_torch_on_every_vector_isa(shape):
    cin, cout, k, stride, h, w = shape
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(2, cin, h, w, generator=gen) * 255
    weight, bias = torch.randn(cout, cin, k, k, generator=gen), torch.randn(cout, generator=gen)
    expected = F.conv2d(x.double(), weight.double(), bias.double(), stride).permute(0, 2, 3, 1)
    outs = [real_conv(x, weight, bias, stride, {}, "native", isa, threads)
            for isa in ISAS if isa != "scalar" for threads in (1, 3)]
    outs.append(real_conv(x, weight, bias, stride, {}, "torch"))
    for out in outs:
        assert out.shape == expected.shape and out.is_contiguous()
        torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5 * 255 * k * k)
    for out in outs[1:-1]:
        assert torch.equal(out, outs[0])


def test_quantized_weight_is_8_bit_per_channel():
    weight = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    weight[2] = 0
    q, scale = quantize_weight(weight)
    assert torch.equal(q, q.round()) and q.abs().max() == 127 and scale[2] == 1
    assert torch.equal(q.flatten(1).abs().amax(1), torch.tensor([127.0, 127, 0, 127, 127]))
    assert ((q * scale[:, None, None, None] - weight).abs() <= scale[:, None, None, None] / 2
            + 1e-6).all()


@pytest.mark.parametrize("shape", REAL_SHAPES)
def test_int8_conv_is_the_integer_convolution_natively_and_in_torch(shape):
    """Both paths give exactly float(integer sum) * scale + bias of the rounded pixels."""
    cin, cout, k, stride, h, w = shape
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(2, cin, h, w, generator=gen) * 300 - 20  # rounded and clamped to 0..255
    weight, bias = torch.randn(cout, cin, k, k, generator=gen), torch.randn(cout, generator=gen)
    q, scale = quantize_weight(weight)
    sums = F.conv2d(x.round().clamp(0, 255).double(), q.double(), None, stride)
    expected = (sums.float().permute(0, 2, 3, 1) * scale + bias)
    outs = [int8_conv(x, weight, bias, stride, {}, "torch")]
    for isa in (isa for isa in ISAS if native.int8_supported(isa)):  # AVX2 and VNNI kernels
        outs += [int8_conv(x, weight, bias, stride, {}, "native", threads, isa)
                 for threads in (1, 3)]
    for out in outs:
        assert out.shape == expected.shape and out.is_contiguous()
        assert torch.equal(out, expected)


@needs_native
def test_pack_layout_by_hand():
    x = torch.ones(1, 1, 1, 70)
    x[0, 0, 0, [0, 63, 64, 69]] = -1.0
    words = native.pack_nhwc(x, groups=1, pad=1, threads=1).view(torch.int64)
    assert words.shape == (1, 3, 3, 1, 2)
    assert words[0, 1, 1, 0].tolist() == [1 | -(1 << 63), 1 | (1 << 5)]
    assert int(words[0, 0].abs().sum()) == 0  # +1 padding = zero bits


def test_weight_layout_by_hand():
    negative = torch.zeros(3, 2, 1, 1, dtype=torch.bool)
    negative[2, 1, 0, 0] = True
    words = pack_weight(negative, groups=1, lanes=8)
    assert words.shape == (1, 1, 1, 1, 1, 8)
    assert words.reshape(-1).tolist() == [0, 0, 2, 0, 0, 0, 0, 0]


def test_apply_post_matches_torch_ops():
    x = torch.randn(2, 9, 9, 4)
    scale, shift = torch.randn(4), torch.randn(4)
    out = apply_post(x, [("pool",), ("affine", scale, shift)])
    expected = F.max_pool2d(x.permute(0, 3, 1, 2), 3, 2) * scale[:, None, None] \
        + shift[:, None, None]
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1))


def test_torch_fallback_when_native_library_is_missing(monkeypatch):
    monkeypatch.setattr(native, "library", lambda: None)
    assert engine.default_backend() == "torch"
    gen = torch.Generator().manual_seed(3)
    layer = _layer(10, 6, 3, 1, 0, 1, gen)
    x = torch.randn(1, 5, 5, 10, generator=gen)
    assert torch.equal(binary_conv(x, layer).double(), _oracle(x, layer))


def test_unknown_isa_or_backend_is_rejected():
    layer = _layer(4, 4, 1, 1, 0, 1, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="unknown backend"):
        binary_conv(torch.randn(1, 2, 2, 4), layer, backend="cuda")
    missing = sorted(set(native.ISAS) - set(ISAS))
    if ISAS and missing:
        with pytest.raises(native.EngineError, match="not supported"):
            binary_conv(torch.randn(1, 2, 2, 4), layer, backend="native", isa=missing[0])
