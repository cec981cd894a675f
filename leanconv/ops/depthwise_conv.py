"""Depthwise convolution.

F. Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017,
arXiv:1610.02357; A. G. Howard et al., "MobileNets", arXiv:1704.04861, 2017.

Each input channel is convolved with its own ``m = C_out / C_in`` KxK kernels
(``groups = C_in``): ``C_in * m * K^2`` MACs per output pixel and as many parameters.

An fp32 NCHW CPU tensor with stride 1, no dilation, same padding and ``m = 1`` runs
leanconv's C++ kernels, forward and backward (:mod:`leanconv.kernels.mixed_depthwise`, a
MixConv with one group), faster there than PyTorch's; everything else is ``nn.Conv2d``'s own
forward.
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv._validate import check_conv_args, check_input
from leanconv.kernels.mixed_depthwise import (
    fits_one_pass,
    native_applies,
    native_mixed_depthwise_conv2d,
)
from leanconv.ops.padding import resolve_padding


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` with ``groups=in_channels`` and numeric same-style padding.

    ``out_channels`` defaults to ``in_channels`` and must be a multiple of it (the channel
    multiplier). It *is* an ``nn.Conv2d``, so every tool that handles convs handles it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        *,
        bias: bool = False,
    ) -> None:
        owner = "DepthwiseConv2d"
        out_channels = in_channels if out_channels is None else out_channels
        check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
        if out_channels % in_channels:
            raise ValueError(
                f"{owner}: out_channels={out_channels} is not a multiple of "
                f"in_channels={in_channels}; use in_channels * m for a channel multiplier m "
                f"(e.g. {in_channels}, {2 * in_channels})"
            )
        super().__init__(
            in_channels, out_channels, kernel_size, stride,
            resolve_padding(owner, padding, kernel_size, dilation), dilation,
            groups=in_channels, bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("DepthwiseConv2d", x, self.in_channels)
        if fits_one_pass(self) and native_applies(x, [self.weight]):
            return native_mixed_depthwise_conv2d(x, [self.weight], self.bias)
        return super().forward(x)
