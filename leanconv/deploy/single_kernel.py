"""A MixConv (or MixNet's grouped pointwise conv) as one convolution kernel.

MixConv (seed 001) splits the channels into groups with kernels ``k_1 < ... < k_g``, convolves
each and concatenates: ``g`` kernel launches plus a split and a concat pass. The same output
comes from one depthwise conv with the largest kernel, each group's kernel zero-padded to it
(centred, so padding and alignment are unchanged). It multiplies by the zeros: MACs grow from
``sum_t c_t k_t^2`` to ``C k_max^2``, and which one is faster depends on the shape and the
backend, so :func:`leanconv.fold` measures both per layer. A dilated group (the paper's
dilated variant: a 3x3 kernel with dilation ``d``) embeds as taps ``d`` apart.

MixNet's grouped pointwise layers (``MixedGroupConv`` with equal splits and equal kernels) are
exactly ``nn.Conv2d(groups=g)``.
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv
from leanconv.ops.padding import get_padding


def _span(conv: nn.Conv2d) -> int:
    return conv.dilation[0] * (conv.kernel_size[0] - 1) + 1


@torch.no_grad()
def single_kernel_mixconv(op: MixConv2d) -> nn.Conv2d:
    """The one depthwise conv equal to ``op`` (every group's kernel zero-padded and centred)."""
    convs = list(op.convs)
    dilations = {conv.dilation[0] for conv in convs}
    dilation = dilations.pop() if len(dilations) == 1 else 1
    span = max(_span(conv) for conv in convs)
    kernel = (span - 1) // dilation + 1
    first = convs[0]
    has_bias = first.bias is not None
    single = nn.Conv2d(op.in_channels, op.out_channels, kernel, first.stride,
                       get_padding(kernel, dilation), dilation, groups=op.in_channels,
                       bias=has_bias, device=first.weight.device, dtype=first.weight.dtype)
    single.weight.zero_()
    start = 0
    for conv in convs:
        step = conv.dilation[0] // dilation
        offset = (kernel - ((conv.kernel_size[0] - 1) * step + 1)) // 2
        taps = slice(offset, offset + (conv.kernel_size[0] - 1) * step + 1, step)
        rows = slice(start, start + conv.out_channels)
        single.weight[rows, :, taps, taps] = conv.weight
        if has_bias:
            single.bias[rows] = conv.bias
        start += conv.out_channels
    return single


@torch.no_grad()
def single_kernel_group_conv(op: MixedGroupConv) -> nn.Conv2d | None:
    """``nn.Conv2d(groups=g)`` equal to ``op`` when its groups are equal; else None."""
    convs = list(op.convs)
    shapes = {(conv.in_channels, conv.out_channels, conv.kernel_size) for conv in convs}
    if len(convs) == 1 or len(shapes) != 1:
        return None
    first = convs[0]
    grouped = nn.Conv2d(op.in_channels, op.out_channels, first.kernel_size, first.stride,
                        first.padding, first.dilation, groups=len(convs),
                        bias=first.bias is not None, device=first.weight.device,
                        dtype=first.weight.dtype)
    grouped.weight.copy_(torch.cat([conv.weight for conv in convs]))
    if first.bias is not None:
        grouped.bias.copy_(torch.cat([conv.bias for conv in convs]))
    return grouped
