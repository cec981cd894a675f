"""Group convolution, optionally followed by a channel shuffle.

Groups: A. Krizhevsky, I. Sutskever, G. E. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012; S. Xie et al., "Aggregated Residual
Transformations for Deep Neural Networks" (ResNeXt), CVPR 2017, arXiv:1611.05431. Shuffle:
X. Zhang, X. Zhou, M. Lin, J. Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural
Network for Mobile Devices", CVPR 2018, arXiv:1707.01083.

Cost per output pixel: ``C_out * (C_in / g) * K^2`` MACs, ``1/g`` of a standard conv;
parameters ``C_out * C_in / g * K^2`` (+ ``C_out`` with bias).
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv._validate import check_conv_args, check_divides, check_input, check_int
from leanconv.ops.channel_shuffle import ChannelShuffle
from leanconv.ops.dense import dense_conv
from leanconv.ops.padding import resolve_padding


class GroupConv2d(nn.Module):
    """A KxK convolution with ``groups`` groups; ``shuffle=True`` shuffles its output channels
    with ``groups`` groups so the next grouped layer sees every group (ShuffleNet v1)."""

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
        groups: int = 2,
        shuffle: bool = False,
    ) -> None:
        super().__init__()
        owner = "GroupConv2d"
        check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
        check_int(owner, "groups", groups)
        check_divides(owner, "groups", groups, in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride,
            resolve_padding(owner, padding, kernel_size, dilation), dilation, groups, bias,
        )
        self.shuffle = ChannelShuffle(groups) if shuffle else nn.Identity()

    def to_dense_weight(self) -> torch.Tensor:
        """The equivalent dense (C_out, C_in, K, K) weight: the diagonal blocks, rows in the
        order the shuffle (if any) puts the outputs."""
        weight, g = self.conv.weight, self.groups
        n, m = self.out_channels, self.in_channels
        dense = weight.new_zeros(n, m, *weight.shape[2:])
        for group in range(g):
            rows = slice(group * n // g, (group + 1) * n // g)
            dense[rows, group * m // g:(group + 1) * m // g] = weight[rows]
        if isinstance(self.shuffle, ChannelShuffle):
            dense = dense[self.shuffle.permutation(n)]
        return dense

    def to_dense(self) -> nn.Conv2d:
        """The exactly equivalent ``nn.Conv2d`` (bias permuted with the outputs)."""
        bias = self.conv.bias
        if bias is not None and isinstance(self.shuffle, ChannelShuffle):
            bias = bias[self.shuffle.permutation(self.out_channels)]
        return dense_conv(self.to_dense_weight(), bias, self.conv.stride[0],
                          self.conv.padding[0], self.conv.dilation[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("GroupConv2d", x, self.in_channels)
        return self.shuffle(self.conv(x))
