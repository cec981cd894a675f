"""MixConv: mixed depthwise convolution kernels.

M. Tan, Q. V. Le, "MixConv: Mixed Depthwise Convolutional Kernels", BMVC 2019,
arXiv:1907.09595.

The ``C`` channels are split into groups ``c_1 + ... + c_g = C``; group ``t`` is convolved
depthwise with a ``k_t x k_t`` kernel (channel multiplier ``m = C_out / C_in``) and the group
outputs are concatenated (the paper's equations for Y^t and the concatenation). Per output pixel:

    MACs = params = m * sum_t c_t * k_t^2        (one kernel size: a depthwise conv)

On fp32 CPU tensors (stride 1, no dilation, m = 1) the forward and backward passes run all
groups in one pass of a C++ kernel (:mod:`leanconv.kernels.mixed_depthwise`: no split, no
concat); other devices, strided or dilated groups and graph capture use the split form, the
paper's definition.

Splits: ``'equal'`` gives every group ``C // g`` channels and the remainder to the first group
(as the official MixNet code does); ``'exponential'`` gives group ``t`` about ``2^-(t+1)`` of
the channels, the last group the same share as the one before it (1/2, 1/4, ..., 2^-(g-1),
2^-(g-1)), remainder to the first group. ``dilated=True`` replaces a ``k x k`` kernel by a
3x3 kernel with dilation ``(k - 1) / 2`` (same receptive field, the paper's dilated variant).

:class:`MixedGroupConv` is the grouped pointwise conv of MixNet (its ``a1.1``/``p1.1``
expansion and projection): input and output channels split into groups, a dense conv per
group.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from leanconv._validate import check_choice, check_input, check_int
from leanconv.kernels.mixed_depthwise import (
    fits_one_pass,
    native_applies,
    native_mixed_depthwise_conv2d,
)
from leanconv.ops.padding import get_padding

SPLITS = ("equal", "exponential")


def split_channels(channels: int, groups: int, split: str = "equal") -> list[int]:
    """Channel counts of ``groups`` groups summing to ``channels`` (remainder to group 0)."""
    if split == "equal":
        sizes = [channels // groups] * groups
    else:
        shares = [2.0 ** -(t + 1) for t in range(groups - 1)] + [2.0 ** -(groups - 1)]
        sizes = [int(channels * share) for share in shares]
    sizes[0] += channels - sum(sizes)
    return sizes


def _check_kernel_sizes(owner: str, kernel_size: object) -> tuple[int, ...]:
    """``kernel_size``: one kernel size per channel group (an int: one group)."""
    if isinstance(kernel_size, int) and not isinstance(kernel_size, bool):
        kernel_size = (kernel_size,)
    if not isinstance(kernel_size, Sequence) or not kernel_size:
        raise ValueError(
            f"{owner}: kernel_size={kernel_size!r} is invalid; expected an odd int or a "
            f"non-empty sequence of odd ints (one per channel group), e.g. (3, 5, 7)"
        )
    for k in kernel_size:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(
                f"{owner}: kernel_size={tuple(kernel_size)!r} is invalid; every kernel size "
                f"must be an odd int >= 1 (groups must keep the same output size)"
            )
    return tuple(kernel_size)


def _check_padding(owner: str, padding: object, kernel_sizes: tuple[int, ...],
                   dilation: int) -> None:
    """Each group pads itself to the same-style padding; an explicit ``padding`` is accepted
    only where it is that padding for every group (one kernel size)."""
    same = {get_padding(k, dilation) for k in kernel_sizes}
    if padding is not None and (isinstance(padding, bool) or same != {padding}):
        valid = f"None or {same.pop()}" if len(same) == 1 else "None"
        raise ValueError(f"{owner}: padding={padding!r} is invalid for kernel sizes "
                         f"{kernel_sizes} (each group pads itself to keep the size); use {valid}")


def _check_common(owner: str, in_channels: int, out_channels: int, stride: int, dilation: int,
                  split: str) -> None:
    check_int(owner, "in_channels", in_channels)
    check_int(owner, "out_channels", out_channels)
    check_int(owner, "stride", stride)
    check_int(owner, "dilation", dilation)
    check_choice(owner, "split", split, SPLITS)


def _split_apply(x: torch.Tensor, splits: list[int], convs: nn.ModuleList) -> torch.Tensor:
    """Convolve each channel slice with its own conv and concatenate the results."""
    parts = torch.split(x, splits, dim=1)
    return torch.cat([conv(part) for conv, part in zip(convs, parts, strict=True)], 1)


def _check_split(owner: str, name: str, channels: int, groups: int, split: str) -> list[int]:
    sizes = split_channels(channels, groups, split)
    if min(sizes) < 1:
        raise ValueError(
            f"{owner}: {name}={channels} is too few for {groups} groups with split={split!r} "
            f"(sizes {sizes}); use fewer kernel sizes or at least "
            f"{groups if split == 'equal' else 2 ** (groups - 1)} channels"
        )
    return sizes


class MixConv2d(nn.Module):
    """Mixed depthwise convolution: channel group ``t`` gets a depthwise ``k_t x k_t`` kernel.

    ``out_channels`` defaults to ``in_channels`` and must be a multiple of it (channel
    multiplier). Padding is each group's numeric same-style padding.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        kernel_size: Sequence[int] | int = (3, 5, 7),
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        *,
        bias: bool = False,
        split: str = "equal",
        dilated: bool = False,
    ) -> None:
        super().__init__()
        owner = "MixConv2d"
        out_channels = in_channels if out_channels is None else out_channels
        _check_common(owner, in_channels, out_channels, stride, dilation, split)
        if out_channels % in_channels:
            raise ValueError(
                f"{owner}: out_channels={out_channels} is not a multiple of "
                f"in_channels={in_channels}; use in_channels * m for a channel multiplier m"
            )
        self.kernel_sizes = _check_kernel_sizes(owner, kernel_size)
        _check_padding(owner, padding, self.kernel_sizes, dilation)
        self.in_channels, self.out_channels, self.split = in_channels, out_channels, split
        self.in_splits = _check_split(owner, "in_channels", in_channels, len(self.kernel_sizes),
                                      split)
        multiplier = out_channels // in_channels
        self.convs = nn.ModuleList()
        for c, k in zip(self.in_splits, self.kernel_sizes, strict=True):
            kernel, dil = (3, dilation * (k - 1) // 2) if dilated and k > 3 else (k, dilation)
            self.convs.append(nn.Conv2d(c, c * multiplier, kernel, stride,
                                        get_padding(kernel, dil), dil, groups=c, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("MixConv2d", x, self.in_channels)
        weights = self._one_pass_weights()
        if weights is not None and native_applies(x, weights):
            return native_mixed_depthwise_conv2d(x, weights, self._one_pass_bias())
        if len(self.convs) == 1:
            return self.convs[0](x)
        return _split_apply(x, self.in_splits, self.convs)

    def _one_pass_weights(self) -> list[torch.Tensor] | None:
        """The groups' weights for the one-pass kernel (:mod:`leanconv.kernels.mixed_depthwise`),
        or None when a group is not a stride-1, undilated, same-padded depthwise conv or has
        hooks of its own (the kernel does not call the group convs, so their hooks would not
        run: pruning masks, observers)."""
        for conv in self.convs:
            if not fits_one_pass(conv) or conv._forward_hooks or conv._forward_pre_hooks:
                return None
        return [conv.weight for conv in self.convs]

    def _one_pass_bias(self) -> torch.Tensor | None:
        biases = [conv.bias for conv in self.convs]
        if all(b is None for b in biases):
            return None
        return torch.cat([conv.weight.new_zeros(conv.out_channels) if b is None else b
                          for conv, b in zip(self.convs, biases, strict=True)])

    def extra_repr(self) -> str:
        return f"splits={self.in_splits}, kernel_sizes={self.kernel_sizes}"


class MixedGroupConv(nn.Module):
    """Grouped conv with uneven groups: input and output channels are both split (``split``
    rule as MixConv) into ``len(kernel_sizes)`` groups, group ``t`` a dense ``k_t x k_t`` conv.

    MixNet's grouped pointwise layers are ``kernel_sizes=(1, 1)``; with equal kernel sizes and
    even splits this is ``nn.Conv2d(groups=g)`` with one weight per group.
    MACs = params = ``sum_t c_in_t * c_out_t * k_t^2``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int = (1, 1),
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        *,
        bias: bool = False,
        split: str = "equal",
    ) -> None:
        super().__init__()
        owner = "MixedGroupConv"
        _check_common(owner, in_channels, out_channels, stride, dilation, split)
        self.kernel_sizes = _check_kernel_sizes(owner, kernel_size)
        _check_padding(owner, padding, self.kernel_sizes, dilation)
        g = len(self.kernel_sizes)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_splits = _check_split(owner, "in_channels", in_channels, g, split)
        self.out_splits = _check_split(owner, "out_channels", out_channels, g, split)
        self.convs = nn.ModuleList(
            nn.Conv2d(ci, co, k, stride, get_padding(k, dilation), dilation, bias=bias)
            for ci, co, k in zip(self.in_splits, self.out_splits, self.kernel_sizes, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("MixedGroupConv", x, self.in_channels)
        if len(self.convs) == 1:
            return self.convs[0](x)
        return _split_apply(x, self.in_splits, self.convs)

    def extra_repr(self) -> str:
        return f"in_splits={self.in_splits}, out_splits={self.out_splits}"
