"""Binary layers against hand-written formulas (DESIGN §2)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rbsf.binary import (RBConv2d, XNORConv2d, binary_convs, kernel_loss, make_conv, sign_approx,
                         sign_changes, sign_ste, weight_signs)


def approx_slope(x: float) -> float:
    if -1 <= x < 0:
        return 2 + 2 * x
    if 0 <= x < 1:
        return 2 - 2 * x
    return 0.0


POINTS = [-2.0, -1.0001, -1.0, -0.75, -0.5, -1e-6, 0.0, 1e-6, 0.3, 0.5, 0.9999, 1.0, 1.5]


def test_sign_values_are_plus_minus_one_and_zero_maps_to_plus():
    x = torch.tensor([-3.0, -1e-9, 0.0, 1e-9, 2.0])
    assert sign_approx(x).tolist() == [-1, -1, 1, 1, 1]
    assert sign_ste(x).tolist() == [-1, -1, 1, 1, 1]


def test_sign_approx_gradient_matches_formula_including_breakpoints():
    x = torch.tensor(POINTS + torch.linspace(-1.5, 1.5, 301).tolist(), dtype=torch.float64,
                     requires_grad=True)
    sign_approx(x).sum().backward()
    expected = torch.tensor([approx_slope(v) for v in x.detach().tolist()], dtype=torch.float64)
    assert torch.equal(x.grad, expected)


def test_sign_ste_gradient_is_clipped_identity():
    x = torch.tensor(POINTS, requires_grad=True)
    sign_ste(x).sum().backward()
    expected = torch.tensor([1.0 if abs(v) <= 1 else 0.0 for v in POINTS])
    assert torch.equal(x.grad, expected)


@pytest.mark.parametrize("groups,padding,stride", [(1, 0, 1), (2, 1, 2), (4, 2, 1)])
def test_rbconv_output_equals_sign_conv_with_scalar_c(groups, padding, stride):
    torch.manual_seed(0)
    conv = RBConv2d(8, 12, 3, stride=stride, padding=padding, groups=groups)
    with torch.no_grad():
        conv.C.uniform_(0.1, 2.0)
    x = torch.randn(2, 8, 9, 11)
    sx = torch.where(x >= 0, 1.0, -1.0)
    sx = F.pad(sx, (padding,) * 4, value=1.0)
    sw = torch.where(conv.weight >= 0, 1.0, -1.0)
    expected = F.conv2d(sx, sw * conv.C.mean(), stride=stride, groups=groups)
    assert torch.allclose(conv(x), expected, atol=1e-5)


def test_rbconv_is_invariant_to_positive_input_scaling():
    torch.manual_seed(1)
    conv = RBConv2d(6, 4, 3, padding=1)
    x = torch.randn(1, 6, 7, 7)
    for factor in (1e-3, 0.5, 7.0, 1e4):
        assert torch.equal(conv(x), conv(x * factor))


def test_rbconv_matrix_mode_uses_full_c():
    torch.manual_seed(2)
    conv = RBConv2d(4, 5, 3, c_mode="matrix")
    with torch.no_grad():
        conv.C.uniform_(0.1, 2.0)
    x = torch.randn(1, 4, 6, 6)
    sw = torch.where(conv.weight >= 0, 1.0, -1.0)
    expected = F.conv2d(torch.where(x >= 0, 1.0, -1.0), sw * conv.C)
    assert torch.allclose(conv(x), expected, atol=1e-5)


def test_c_init_minimises_kernel_loss():
    torch.manual_seed(3)
    conv = RBConv2d(4, 6, 3)
    assert torch.allclose(conv.C, conv.weight.abs().mean(dim=0))
    best = conv.kernel_loss().item()
    with torch.no_grad():
        conv.C.mul_(1.1)
    assert conv.kernel_loss().item() > best


def test_kernel_loss_gradients_match_closed_forms():
    torch.manual_seed(4)
    conv = RBConv2d(3, 5, 3, c_mode="matrix").double()
    with torch.no_grad():
        conv.weight.uniform_(-1.5, 1.5)
        conv.C.uniform_(0.2, 1.0)
    conv.kernel_loss().backward()
    w, c = conv.weight.detach(), conv.C.detach()
    w_hat = torch.where(w >= 0, 1.0, -1.0).double()
    residual = w - c * w_hat
    slope = torch.zeros_like(w)
    slope = torch.where((w >= -1) & (w < 0), 2 + 2 * w, slope)
    slope = torch.where((w >= 0) & (w < 1), 2 - 2 * w, slope)
    # dL/dC = -sum_i (W_i - C W^_i) W^_i ; dL/dW^ = -(W - C W^) C, chained through dW^/dW,
    # plus the direct dependence of the loss on W.
    assert torch.allclose(conv.C.grad, -(residual * w_hat).sum(dim=0))
    assert torch.allclose(conv.weight.grad, residual + (-residual * c) * slope)


def test_kernel_loss_of_model_sums_its_layers():
    layers = torch.nn.Sequential(RBConv2d(4, 4, 3), XNORConv2d(4, 4, 3), RBConv2d(4, 2, 1))
    total = layers[0].kernel_loss() + layers[2].kernel_loss()
    assert torch.allclose(kernel_loss(layers), total)
    assert [n for n, _ in binary_convs(layers)] == ["0", "1", "2"]


def test_xnor_alpha_is_per_filter_mean_abs_weight():
    torch.manual_seed(5)
    conv = XNORConv2d(6, 4, 3, groups=2)
    alpha = conv.weight.abs().mean(dim=(1, 2, 3))
    weight = conv.quantized_weight()
    for i in range(4):
        assert torch.allclose(weight[i].abs(), alpha[i].expand_as(weight[i]))
        assert torch.equal(torch.sign(weight[i]), torch.where(conv.weight[i] >= 0, 1.0, -1.0))


def test_factory_builds_each_kind_with_one_signature():
    assert type(make_conv("fp", 4, 8, 3, 1, 1, 2)) is torch.nn.Conv2d
    assert isinstance(make_conv("xnor", 4, 8, 3, 1, 1, 2), XNORConv2d)
    rb = make_conv("rbconv", 4, 8, 3, 1, 1, 2, c_mode="matrix")
    assert isinstance(rb, RBConv2d) and rb.C.shape == (2, 3, 3)
    with pytest.raises(ValueError, match="unknown conv kind"):
        make_conv("ternary", 4, 8, 3)


def test_bireal_is_a_plain_quant_conv_with_approx_sign_and_magnitude_aware_weights():
    from rbsf.binary import PIECES, BiRealWeight, QuantConv2d, SignApprox
    conv = make_conv("bireal", 4, 6, 3, 1, 1, groups=2)
    assert type(conv) is QuantConv2d and PIECES["bireal"] == (SignApprox, BiRealWeight)
    assert isinstance(conv.input_quantizer, SignApprox)
    assert isinstance(conv.weight_quantizer, BiRealWeight)


def test_bireal_forward_and_gradients_match_hand_formulas():
    torch.manual_seed(6)
    conv = make_conv("bireal", 4, 5, 3, 1, 1).double()
    with torch.no_grad():
        conv.weight.uniform_(-1.5, 1.5)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    (conv(x) * g).sum().backward()
    w = conv.weight.detach()
    alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
    w_b = (alpha * torch.where(w >= 0, 1.0, -1.0)).requires_grad_(True)
    x_b = torch.where(x.detach() >= 0, 1.0, -1.0).double().requires_grad_(True)
    expected = F.conv2d(F.pad(x_b, (1, 1, 1, 1), value=1.0), w_b)
    assert torch.allclose(conv(x), expected)
    (expected * g).sum().backward()
    # magnitude-aware: dL/dW = dL/dW_b * alpha * 1{|W| <= 1}, nothing through alpha itself
    assert torch.allclose(conv.weight.grad, w_b.grad * alpha * (w.abs() <= 1))
    slope = torch.tensor([approx_slope(v) for v in x.detach().flatten().tolist()],
                         dtype=torch.float64).view_as(x)
    assert torch.allclose(x.grad, x_b.grad * slope)


def test_sign_changes_count_the_binary_weights_that_changed_sign():
    model = nn.Sequential(make_conv("rbconv", 4, 6, 3), nn.Conv2d(6, 6, 1),
                          make_conv("xnor", 6, 5, 3))
    first, last = model[0].weight.data.view(-1), model[2].weight.data.view(-1)
    first[10], first[11] = 0.5, -0.5
    before = weight_signs(model)
    assert [s.shape for s in before] == [(6, 4, 3, 3), (5, 6, 3, 3)]  # the fp conv is not binary
    first[:3] *= -1                      # three changes
    first[10], first[11] = 0.0, 0.0      # 0 binarizes to +1: a change only for the negative one
    last[7] *= -1                        # one change in the other layer
    model[1].weight.data.neg_()          # not a binary layer
    after = weight_signs(model)
    assert sign_changes(before, after) == 5
    assert sign_changes(after, after) == 0
    with pytest.raises(ValueError):
        sign_changes(before, after[:1])
