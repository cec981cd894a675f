"""Depthwise-separable convolution.

A. G. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv:1704.04861, 2017; F. Chollet, "Xception: Deep Learning with Depthwise
Separable Convolutions", CVPR 2017, arXiv:1610.02357.

A KxK depthwise conv (``C_in -> m * C_in``, ``m`` = depth multiplier) followed by a 1x1
pointwise conv (``m * C_in -> C_out``). MACs per output pixel ``m * C_in * (K^2 + C_out)``;
ratio to a standard conv ``1/C_out + 1/K^2`` for m = 1 (HetConv seed, eq. 5).
Parameters ``m * C_in * K^2 + m * C_in * C_out`` (+ ``C_out`` with bias, + the norm's).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from leanconv._validate import check_conv_args, check_input, check_int
from leanconv.ops.dense import dense_conv
from leanconv.ops.depthwise_conv import DepthwiseConv2d


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise then pointwise; ``norm_layer``/``act_layer`` (classes, optional) go between."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        *,
        bias: bool = False,
        depth_multiplier: int = 1,
        norm_layer: Callable[[int], nn.Module] | None = None,
        act_layer: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        owner = "DepthwiseSeparableConv2d"
        check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
        check_int(owner, "depth_multiplier", depth_multiplier)
        self.in_channels, self.out_channels = in_channels, out_channels
        mid = in_channels * depth_multiplier
        self.depthwise = DepthwiseConv2d(in_channels, mid, kernel_size, stride, padding, dilation)
        self.norm = norm_layer(mid) if norm_layer is not None else nn.Identity()
        self.act = act_layer() if act_layer is not None else nn.Identity()
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def to_dense_weight(self) -> torch.Tensor:
        """The equivalent dense (C_out, C_in, K, K) weight
        ``W[o, i] = sum_r pw[o, i*m + r] * dw[i*m + r]``; only without a norm/act between."""
        if not (isinstance(self.norm, nn.Identity) and isinstance(self.act, nn.Identity)):
            raise ValueError("DepthwiseSeparableConv2d.to_dense_weight: a norm or activation "
                             "between the convs makes it non-linear; no dense equivalent")
        m = self.in_channels
        dw = self.depthwise.weight  # (m * r, 1, kh, kw)
        pw = self.pointwise.weight[:, :, 0, 0]  # (n, m * r)
        r = dw.shape[0] // m
        return torch.einsum("oir,irhw->oihw", pw.view(-1, m, r), dw.view(m, r, *dw.shape[2:]))

    def to_dense(self) -> nn.Conv2d:
        """The exactly equivalent ``nn.Conv2d`` (only without a norm/act between)."""
        dw = self.depthwise
        return dense_conv(self.to_dense_weight(), self.pointwise.bias, dw.stride[0],
                          dw.padding[0], dw.dilation[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("DepthwiseSeparableConv2d", x, self.in_channels)
        return self.pointwise(self.act(self.norm(self.depthwise(x))))
