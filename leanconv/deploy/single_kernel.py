"""A MixConv (or MixNet's grouped pointwise conv) as one convolution kernel, or fewer.

MixConv (Tan & Le, BMVC 2019) splits the channels into groups with kernels
``k_1 < ... < k_g``, convolves each and concatenates: ``g`` kernel launches plus a split and a
concat pass. The same output comes from one depthwise conv with the largest kernel, each
group's kernel zero-padded to it (centred, so padding and alignment are unchanged). It
multiplies by the zeros: MACs grow from
``sum_t c_t k_t^2`` to ``C k_max^2``, and which one is faster depends on the shape and the
backend, so :func:`leanconv.fold` measures per layer: the split, one kernel, and every
merge of adjacent groups in between (:func:`merged_mixconv`). A dilated group (the paper's
dilated variant: a 3x3 kernel with dilation ``d``) embeds as taps ``d`` apart.

MixNet's grouped pointwise layers (``MixedGroupConv`` with equal splits and equal kernels) are
exactly ``nn.Conv2d(groups=g)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv
from leanconv.ops.padding import get_padding


def _span(conv: nn.Conv2d) -> int:
    return conv.dilation[0] * (conv.kernel_size[0] - 1) + 1


@torch.no_grad()
def _embed(convs: list[nn.Conv2d]) -> nn.Conv2d:
    """One depthwise conv equal to the concatenated outputs of depthwise ``convs`` applied to
    consecutive channel slices (every kernel zero-padded to the largest span, centred)."""
    dilations = {conv.dilation[0] for conv in convs}
    dilation = dilations.pop() if len(dilations) == 1 else 1
    span = max(_span(conv) for conv in convs)
    kernel = (span - 1) // dilation + 1
    first = convs[0]
    in_channels = sum(conv.in_channels for conv in convs)
    out_channels = sum(conv.out_channels for conv in convs)
    single = nn.Conv2d(in_channels, out_channels, kernel, first.stride,
                       get_padding(kernel, dilation), dilation, groups=in_channels,
                       bias=first.bias is not None, device=first.weight.device,
                       dtype=first.weight.dtype)
    single.weight.zero_()
    start = 0
    for conv in convs:
        step = conv.dilation[0] // dilation
        extent = (conv.kernel_size[0] - 1) * step + 1
        offset = (kernel - extent) // 2
        taps = slice(offset, offset + extent, step)
        rows = slice(start, start + conv.out_channels)
        single.weight[rows, :, taps, taps] = conv.weight
        if single.bias is not None:
            single.bias[rows] = conv.bias
        start += conv.out_channels
    return single


def single_kernel_mixconv(op: MixConv2d) -> nn.Conv2d:
    """The one depthwise conv equal to ``op`` (every group's kernel zero-padded and centred)."""
    return _embed(list(op.convs))


def merged_mixconv(op: MixConv2d, parts: tuple[int, ...]) -> nn.Module:
    """``op`` with adjacent groups merged: ``parts`` counts the groups of each merged conv
    (``(2, 2)`` on four groups: 3x3 + 5x5 as one 5x5 conv, 7x7 + 9x9 as one 9x9). Between
    the split (all ones) and one kernel (``(g,)``): fewer launches and concatenated pieces
    for fewer multiplications by zero."""
    if sum(parts) != len(op.convs) or min(parts) < 1:
        raise ValueError(f"merged_mixconv: parts={parts!r} is invalid; expected positive "
                         f"counts summing to the {len(op.convs)} groups")
    if len(parts) == 1:
        return single_kernel_mixconv(op)
    merged = copy.deepcopy(op)
    convs, splits, start = [], [], 0
    for count in parts:
        group = list(op.convs[start:start + count])
        convs.append(group[0] if count == 1 else _embed(group))
        splits.append(sum(op.in_splits[start:start + count]))
        start += count
    merged.convs = nn.ModuleList(copy.deepcopy(convs))
    merged.in_splits = splits
    merged.kernel_sizes = tuple(conv.kernel_size[0] for conv in convs)
    return merged


def compositions(groups: int) -> list[tuple[int, ...]]:
    """Every way to cut ``groups`` ordered groups into adjacent parts (2^(groups-1) ways)."""
    if groups == 1:
        return [(1,)]
    result = []
    for first in range(1, groups + 1):
        rest = compositions(groups - first) if first < groups else [()]
        result += [(first, *tail) for tail in rest]
    return result


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
