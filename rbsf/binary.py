"""Binarized convolutions: sign estimators, RBConv2d, XNORConv2d and one factory by kind.

The four kinds of convolution differ only in two pluggable pieces (``PIECES``):

* the *input quantizer* applied to the activations (identity for ``fp``, a sign with the
  clipped straight-through gradient for ``xnor``, a sign with the piecewise-polynomial
  gradient of RBCN / Bi-Real Net's ApproxSign for ``rbconv`` and ``bireal``);
* the *weight quantizer* applied to the latent weights ``W`` (identity, ``alpha * sign(W)``
  with ``alpha`` the per-filter mean ``|W|`` for ``xnor``, the same forward with Bi-Real Net's
  magnitude-aware gradient for ``bireal``, or ``sign(W) * C`` with the learnable matrix ``C``
  for ``rbconv``).

Bi-Real Net's third piece, a real-valued shortcut around every binary convolution, belongs to
the network, not to the layer (``rbsf.models.backbones``).

Padding of binarized inputs: zero padding after the sign would introduce a third value (0) that
a 1-bit engine cannot represent. Binary layers therefore pad their *binarized* input with +1
(the value ``sign(0)`` takes here), then convolve without padding. The tensor seen by the
convolution is strictly in {-1, +1}, so a bit-packed XNOR/popcount engine reproduces it exactly
(a padded position is a set bit).
"""
from __future__ import annotations

from typing import Callable, List, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = ("fp", "xnor", "rbconv", "bireal")
C_MODES = ("scalar", "matrix")
PAD_VALUE = 1.0
IntPair = Union[int, Tuple[int, int]]


def hard_sign(x: torch.Tensor) -> torch.Tensor:
    """Sign with values in {-1, +1}; 0 maps to +1."""
    return (x >= 0).to(x.dtype).mul_(2).sub_(1)


def approx_sign_slope(x: torch.Tensor) -> torch.Tensor:
    """d sign / dx of RBCN / Bi-Real Net: 2+2x on [-1,0), 2-2x on [0,1), 0 elsewhere, which
    is 2-2|x| clipped at 0 (the same values, in three elementwise passes instead of eight)."""
    return (2 - 2 * x.abs()).clamp_(min=0)


def clipped_identity_slope(x: torch.Tensor) -> torch.Tensor:
    """Straight-through slope of XNOR-Net: 1 where |x| <= 1, else 0."""
    return (x.abs() <= 1).to(x.dtype)


def _sign_function(slope: Callable[[torch.Tensor], torch.Tensor]) -> type:
    """An autograd function: :func:`hard_sign` forward, ``grad * slope(x)`` backward."""

    class SignFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return hard_sign(x)

        @staticmethod
        def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
            (x,) = ctx.saved_tensors
            return grad_output * slope(x)

    return SignFunction


_SignApprox = _sign_function(approx_sign_slope)
_SignSTE = _sign_function(clipped_identity_slope)


def sign_approx(x: torch.Tensor) -> torch.Tensor:
    """Sign forward; backward 2+2x on [-1,0), 2-2x on [0,1), 0 elsewhere (RBCN Eq. / Bi-Real)."""
    return _SignApprox.apply(x)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Sign forward; clipped straight-through backward (gradient 1 where |x| <= 1), as XNOR-Net."""
    return _SignSTE.apply(x)


class SignApprox(nn.Module):
    """Input quantizer of RBConv: :func:`sign_approx` as a module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_approx(x)


class SignSTE(nn.Module):
    """Input quantizer of XNOR: :func:`sign_ste` as a module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_ste(x)


class XnorWeight(nn.Module):
    """Weight quantizer of XNOR-Net: ``alpha * sign(W)``, alpha = mean |W| of each output filter."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return scaling_alpha(weight) * sign_ste(weight)


class BiRealWeight(nn.Module):
    """Weight quantizer of Bi-Real Net: ``alpha * sign(W)`` with the magnitude-aware gradient.

    The forward pass equals XNOR's (alpha = mean |W| of each output filter); the backward pass
    treats alpha as a constant, so dL/dW = dL/dW_b * alpha * 1{|W| <= 1} (Bi-Real Net, Sec. 3.3):
    the gradient of each weight is scaled by the magnitude of its filter, with no term through
    alpha itself.
    """

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return scaling_alpha(weight).detach() * sign_ste(weight)


def scaling_alpha(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-filter mean absolute weight, shaped to broadcast over the filter."""
    return weight.abs().mean(dim=(1, 2, 3), keepdim=True)


class RectifiedWeight(nn.Module):
    """Weight quantizer of RBConv: ``sign(W) * C`` with one learnable matrix C per layer.

    C has the shape of one filter (in_channels/groups x k x k) and is shared by all filters.
    With ``c_mode="scalar"`` (the paper's implementation) the forward pass uses its average C*,
    a single scalar; with ``c_mode="matrix"`` the full matrix multiplies every filter.
    """

    def __init__(self, filter_shape: Tuple[int, int, int], c_mode: str = "scalar"):
        super().__init__()
        if c_mode not in C_MODES:
            raise ValueError(f"c_mode must be one of {C_MODES}, got {c_mode!r}")
        self.c_mode = c_mode
        self.C = nn.Parameter(torch.ones(filter_shape))

    def scale(self) -> torch.Tensor:
        """The factor multiplying sign(W) in the forward pass (C* or C)."""
        return self.C.mean() if self.c_mode == "scalar" else self.C

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return sign_approx(weight) * self.scale()

    @torch.no_grad()
    def reset_from(self, weight: torch.Tensor) -> None:
        """Set C to mean_i |W_i|, the minimiser of the kernel loss for the given W."""
        self.C.copy_(weight.abs().mean(dim=0))

    def kernel_loss(self, weight: torch.Tensor) -> torch.Tensor:
        """0.5 * sum_i ||W_i - C (.) sign(W_i)||^2 with the full matrix C (lambda1 not applied)."""
        return 0.5 * (weight - self.C * sign_approx(weight)).pow(2).sum()


class QuantConv2d(nn.Conv2d):
    """``conv(input_quantizer(x), weight_quantizer(W))``; ``.weight`` is the latent W.

    Binarized inputs are padded with +1 (see the module docstring), so the convolution itself
    runs without padding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, groups: int = 1, bias: bool = False,
                 *, input_quantizer: nn.Module, weight_quantizer: nn.Module):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias=bias)
        self.input_quantizer = input_quantizer
        self.weight_quantizer = weight_quantizer

    def quantized_weight(self) -> torch.Tensor:
        """The weight the convolution uses in the forward pass."""
        return self.weight_quantizer(self.weight)

    def binarize_input(self, x: torch.Tensor) -> torch.Tensor:
        """The quantized input padded with +1: exactly what the convolution sees."""
        x = self.input_quantizer(x)
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph), value=PAD_VALUE)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.binarize_input(x), self.quantized_weight(), self.bias,
                        self.stride, 0, self.dilation, self.groups)


class RBConv2d(QuantConv2d):
    """Rectified binary convolution: ``conv(sign(x), sign(W) (.) C)`` (RBCN, IJCAI 2019)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, groups: int = 1, bias: bool = False,
                 c_mode: str = "scalar"):
        filter_shape = (in_channels // groups,) + _pair(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, bias,
                         input_quantizer=SignApprox(),
                         weight_quantizer=RectifiedWeight(filter_shape, c_mode))
        self.reset_scale()

    @property
    def C(self) -> nn.Parameter:
        return self.weight_quantizer.C

    def reset_scale(self) -> None:
        """Initialise C from the current latent weights (mean |W| over the filters)."""
        self.weight_quantizer.reset_from(self.weight)

    def kernel_loss(self) -> torch.Tensor:
        """0.5 * sum_i ||W_i - C (.) sign(W_i)||^2 (the trainer multiplies by lambda1)."""
        return self.weight_quantizer.kernel_loss(self.weight)


class XNORConv2d(QuantConv2d):
    """XNOR-Net convolution: ``conv(sign(x), alpha * sign(W))``, alpha per output filter."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, groups: int = 1, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, bias,
                         input_quantizer=SignSTE(), weight_quantizer=XnorWeight())


def _pair(value: IntPair) -> Tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


# kind -> (input quantizer, weight quantizer) of a plain QuantConv2d (xnor and rbconv have
# their own subclasses, which add C, its kernel loss and its initialisation for rbconv)
PIECES = {"bireal": (SignApprox, BiRealWeight)}


def make_conv(kind: str, in_channels: int, out_channels: int, kernel_size: IntPair,
              stride: IntPair = 1, padding: IntPair = 0, groups: int = 1, bias: bool = False,
              c_mode: str = "scalar") -> nn.Conv2d:
    """Build a convolution of kind ``"fp"``, ``"xnor"``, ``"rbconv"`` or ``"bireal"`` with one
    signature."""
    if kind == "fp":
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                         groups=groups, bias=bias)
    if kind == "xnor":
        return XNORConv2d(in_channels, out_channels, kernel_size, stride, padding, groups, bias)
    if kind == "rbconv":
        return RBConv2d(in_channels, out_channels, kernel_size, stride, padding, groups, bias,
                        c_mode=c_mode)
    if kind in PIECES:
        input_quantizer, weight_quantizer = PIECES[kind]
        return QuantConv2d(in_channels, out_channels, kernel_size, stride, padding, groups, bias,
                           input_quantizer=input_quantizer(), weight_quantizer=weight_quantizer())
    raise ValueError(f"unknown conv kind {kind!r}; expected one of {KINDS}")


def binary_convs(model: nn.Module):
    """(name, module) of every binarized convolution in ``model``, in definition order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantConv2d)]


def binarizes_to_plus(weight: torch.Tensor) -> torch.Tensor:
    """Whether each value of ``weight`` binarizes to +1 under :func:`hard_sign` (a bool tensor)."""
    return weight.detach() >= 0


def weight_signs(model: nn.Module) -> List[torch.Tensor]:
    """:func:`binarizes_to_plus` of the latent weights of every binarized conv of ``model``, one
    bool tensor per layer."""
    return [binarizes_to_plus(m.weight) for _, m in binary_convs(model)]


def sign_changes(before: List[torch.Tensor], after: List[torch.Tensor]) -> int:
    """How many binary weights differ in sign between two :func:`weight_signs` lists."""
    if [b.shape for b in before] != [a.shape for a in after]:
        raise ValueError("sign lists of different layers or shapes")
    return sum(int((b != a).sum()) for b, a in zip(before, after))


def kernel_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the kernel losses of all RBConv2d layers of ``model`` (0 when there are none)."""
    losses = [m.kernel_loss() for _, m in binary_convs(model) if isinstance(m, RBConv2d)]
    if not losses:
        return torch.zeros(())
    return torch.stack(losses).sum()


def reset_scales(model: nn.Module) -> None:
    """Re-initialise C of every RBConv2d from its current weights (after loading a teacher)."""
    for _, m in binary_convs(model):
        if isinstance(m, RBConv2d):
            m.reset_scale()
