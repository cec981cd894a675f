"""Mixed depthwise convolution in one pass: MixConv (Tan & Le, BMVC 2019,
arXiv:1907.09595) without split and concat.

``y = concat_t(depthwise_conv(x_t, w_t, k_t) + b_t)`` over channel groups ``x_t`` of sizes
``c_t`` (``sum c_t = C``), each with its own odd kernel size ``k_t``, stride 1, dilation 1 and
"same" padding ``(k_t - 1) / 2``. MACs per output pixel: ``sum_t c_t * k_t^2``. One group is a
plain depthwise conv.

:func:`mixed_depthwise_conv2d` runs the C++ kernels (``mixed_depthwise.cpp``: input read
once, output written once, register-tiled, NCHW and channels_last; a backward through the same
kernel with rotated weights plus a weight-gradient kernel) where they apply, and
:func:`reference_mixed_depthwise_conv2d` (``torch.split`` + ``F.conv2d`` per group +
``torch.cat``, what timm's ``MixedConv2d`` does) everywhere else: under ``torch.compile`` /
``torch.export`` / tracing or CPU autocast, for other dtypes or devices, or when the
extension could not be built (:mod:`leanconv.kernels.build`).

A plain depthwise conv (one group) runs the kernel only in NCHW on planes at least 14 pixels
wide, where it measured faster than PyTorch's kernel; MixConv (several groups) runs it in
both layouts, faster on every shape measured (``benchmarks/depthwise_kernels.py``; the
numbers are in docs/deploy.md's "Native kernels" section).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import register_flop_formula

from leanconv.kernels.build import native

NATIVE_KERNEL_SIZES = frozenset({1, 3, 5, 7, 9, 11})
MIN_DEPTHWISE_WIDTH = 14  # narrower NCHW planes leave most of the kernel's 16 lanes idle
OWNER = "mixed_depthwise_conv2d"


def reference_mixed_depthwise_conv2d(x: torch.Tensor, weights: Sequence[torch.Tensor],
                                     bias: torch.Tensor | None = None) -> torch.Tensor:
    """The same result from PyTorch ops: split, one depthwise ``F.conv2d`` per group, concat."""
    if len(weights) == 1:
        return F.conv2d(x, weights[0], bias, padding=weights[0].shape[-1] // 2,
                        groups=weights[0].shape[0])
    splits = [w.shape[0] for w in weights]
    biases = bias.split(splits) if bias is not None else [None] * len(splits)
    parts = x.split(splits, 1)
    return torch.cat([F.conv2d(part, w, b, padding=w.shape[-1] // 2, groups=w.shape[0])
                      for part, w, b in zip(parts, weights, biases, strict=True)], 1)


def mixed_depthwise_macs(x_shape: Sequence[int], weight_shapes: Sequence[Sequence[int]]) -> int:
    """``N * H * W * sum_t c_t * k_t^2``: the kernel's multiply-accumulates (stride 1)."""
    n, _, h, w = x_shape
    return n * h * w * sum(shape[0] * shape[-1] * shape[-2] for shape in weight_shapes)


def _group_shapes(channels: Sequence[int], kernel_sizes: Sequence[int]) -> list[tuple]:
    return [(c, 1, k, k) for c, k in zip(channels, kernel_sizes, strict=True)]


# The ops are defined here, when leanconv is imported; the C++ extension, compiled on first
# use, only adds their CPU kernels. So their shape functions (fake tensors, torch.compile) and
# FLOP formulas exist before anything runs: torch's FlopCounterMode copies its formula table
# when it is created, and a formula registered lazily during the first forward was missed.
LIBRARY = torch.library.Library("leanconv", "DEF")
LIBRARY.define("mixed_depthwise_conv2d(Tensor x, Tensor[] weights, Tensor? bias) -> Tensor")
LIBRARY.define("mixed_depthwise_conv2d_weight_grad(Tensor x, Tensor dy, int[] channels, "
               "int[] kernel_sizes) -> Tensor[]")
torch.library.register_fake("leanconv::mixed_depthwise_conv2d", lib=LIBRARY)(
    lambda x, weights, bias: torch.empty_like(x))
torch.library.register_fake("leanconv::mixed_depthwise_conv2d_weight_grad", lib=LIBRARY)(
    lambda x, dy, channels, kernel_sizes: [x.new_empty(shape) for shape in
                                           _group_shapes(channels, kernel_sizes)])
register_flop_formula(torch.ops.leanconv.mixed_depthwise_conv2d)(
    lambda x_shape, weight_shapes, bias_shape, out_shape=None, **kwargs:
    2 * mixed_depthwise_macs(x_shape, weight_shapes))
register_flop_formula(torch.ops.leanconv.mixed_depthwise_conv2d_weight_grad)(
    lambda x_shape, dy_shape, channels, kernel_sizes, out_shape=None, **kwargs:
    2 * mixed_depthwise_macs(x_shape, _group_shapes(channels, kernel_sizes)))


class _MixedDepthwise(torch.autograd.Function):
    """Forward and backward in the C++ kernels. The input gradient is the same mixed depthwise
    conv of ``dy`` with every kernel rotated by 180 degrees (stride 1, same padding); the
    weight gradient is ``dw[c, u, v] = sum_{n,i,j} dy[n,c,i,j] x[n,c,i+u-p,j+v-p]``; the bias
    gradient is ``dy`` summed over N, H, W. A backward that must itself be differentiable
    (``create_graph=True``, e.g. a gradient penalty) runs the reference path's backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, bias: torch.Tensor | None,
                *weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, bias, *weights)
        return torch.ops.leanconv.mixed_depthwise_conv2d(x, list(weights), bias)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, bias, *weights = ctx.saved_tensors
        if torch.is_grad_enabled():
            return _differentiable_backward(ctx.needs_input_grad, dy, x, bias, weights)
        ops = torch.ops.leanconv
        layout = torch.contiguous_format if x.is_contiguous() else torch.channels_last
        dy = dy.contiguous(memory_format=layout)
        dx = dbias = None
        if ctx.needs_input_grad[0]:
            rotated = [w.flip(-1, -2).contiguous() for w in weights]
            dx = ops.mixed_depthwise_conv2d(dy, rotated, None)
        if ctx.needs_input_grad[1]:
            dbias = dy.sum((0, 2, 3))
        dweights: list[torch.Tensor | None] = [None] * len(weights)
        if any(ctx.needs_input_grad[2:]):
            dweights = ops.mixed_depthwise_conv2d_weight_grad(
                x.contiguous(), dy.contiguous(), [w.shape[0] for w in weights],
                [w.shape[-1] for w in weights])
        return (dx, dbias, *dweights)


def _differentiable_backward(needs: Sequence[bool], dy: torch.Tensor, x: torch.Tensor,
                             bias: torch.Tensor | None, weights: Sequence[torch.Tensor]
                             ) -> tuple[torch.Tensor | None, ...]:
    inputs = [x, bias, *weights]
    wanted = [t for t, need in zip(inputs, needs, strict=True) if need]
    y = reference_mixed_depthwise_conv2d(x, weights, bias)
    grads = iter(torch.autograd.grad(y, wanted, dy, create_graph=True))
    return tuple(next(grads) if need else None for need in needs)


def fits_one_pass(conv: nn.Conv2d) -> bool:
    """True when ``conv`` is a depthwise conv this kernel computes: square odd kernel, stride 1,
    dilation 1, zero padding ``(k - 1) / 2``, one output channel per input channel."""
    k = conv.kernel_size[0]
    return (conv.kernel_size == (k, k) and k % 2 == 1 and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.padding == (k // 2, k // 2)
            and conv.padding_mode == "zeros"
            and conv.groups == conv.in_channels == conv.out_channels)


def _in_graph_capture(x: object) -> bool:
    return (isinstance(x, torch.fx.Proxy) or torch.compiler.is_compiling()
            or torch.compiler.is_exporting() or torch.jit.is_tracing()
            or torch.jit.is_scripting())


def native_applies(x: torch.Tensor, weights: Sequence[torch.Tensor],
                   bias: torch.Tensor | None = None) -> bool:
    """True where :func:`mixed_depthwise_conv2d` would run the C++ kernel on these arguments."""
    if _in_graph_capture(x):
        return False
    nchw = x.is_contiguous()
    if len(weights) == 1 and (not nchw or x.shape[-1] < MIN_DEPTHWISE_WIDTH):
        return False  # a plain depthwise conv where PyTorch's kernel measured faster
    if not (nchw or x.is_contiguous(memory_format=torch.channels_last)):
        return False
    tensors = [x, *weights] + ([] if bias is None else [bias])
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return False
    if torch.is_autocast_enabled("cpu"):  # PyTorch's convs would compute in lower precision
        return False
    if any(w.shape[-1] not in NATIVE_KERNEL_SIZES for w in weights):
        return False
    return native() is not None


def _check_arguments(x: object, weights: object, bias: object) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{OWNER}: x={shape} is invalid; expected a 4-d tensor (N, C, H, W)")
    if isinstance(weights, torch.Tensor) or not isinstance(weights, Sequence) or not weights:
        raise ValueError(f"{OWNER}: weights must be a non-empty sequence of (c_t, 1, k_t, k_t) "
                         f"tensors, got {type(weights).__name__}")
    for i, w in enumerate(weights):
        ok = isinstance(w, torch.Tensor) and w.dim() == 4 and w.shape[1] == 1
        if not ok or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise ValueError(f"{OWNER}: weights[{i}]={shape} is invalid; expected a "
                             f"(c_t, 1, k, k) tensor with an odd k")
    channels = sum(w.shape[0] for w in weights)
    if channels != x.shape[1]:
        raise ValueError(f"{OWNER}: the weights cover {channels} channels but x has "
                         f"{x.shape[1]} (shape {tuple(x.shape)}); the group sizes must sum to C")
    if bias is not None and (not isinstance(bias, torch.Tensor)
                             or tuple(bias.shape) != (channels,)):
        shape = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"{OWNER}: bias={shape} is invalid; expected None or a ({channels},) "
                         f"tensor")


def mixed_depthwise_conv2d(x: torch.Tensor, weights: Sequence[torch.Tensor],
                           bias: torch.Tensor | None = None) -> torch.Tensor:
    """Mixed depthwise conv of ``x`` (N, C, H, W) with ``weights[t]`` (c_t, 1, k_t, k_t).

    Stride 1, dilation 1, padding ``(k_t - 1) / 2``; ``bias``: None or (C,). The result has
    ``x``'s memory format. The C++ kernel runs where :func:`native_applies`; the result equals
    :func:`reference_mixed_depthwise_conv2d` up to float rounding.
    """
    if not _in_graph_capture(x):
        _check_arguments(x, weights, bias)
    if native_applies(x, weights, bias):
        return native_mixed_depthwise_conv2d(x, weights, bias)
    return reference_mixed_depthwise_conv2d(x, weights, bias)


def native_mixed_depthwise_conv2d(x: torch.Tensor, weights: Sequence[torch.Tensor],
                                  bias: torch.Tensor | None = None) -> torch.Tensor:
    """The C++ kernel itself (with its backward when autograd needs one), for callers that
    checked :func:`native_applies` and whose arguments are valid by construction
    (``MixConv2d``, ``DepthwiseConv2d``)."""
    weights = [w.contiguous() for w in weights]
    bias = None if bias is None else bias.contiguous()
    if torch.is_grad_enabled() and any(t.requires_grad for t in [x, *weights, bias]
                                       if t is not None):
        return _MixedDepthwise.apply(x, bias, *weights)
    return torch.ops.leanconv.mixed_depthwise_conv2d(x, weights, bias)
