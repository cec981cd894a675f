"""Stacked 3x3 convolutions replacing one large KxK conv.

K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (VGG), ICLR 2015, arXiv:1409.1556; C. Szegedy et al., "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016, arXiv:1512.00567.

``(K - 1) / 2`` stacked 3x3 convs (each with the layer's dilation ``d``) have the receptive
field ``1 + d(K - 1)`` of one KxK conv. Parameters and MACs per pixel (C in, C out):
two 3x3 = ``18 C^2`` vs one 5x5 = ``25 C^2`` (28% fewer); three 3x3 = ``27 C^2`` vs one
7x7 = ``49 C^2`` (45% fewer). In general ``9 * (C_in * C_out + (n - 1) * C_out^2)``.
An activation (and optionally a norm) between the convs adds the non-linearity the
factorisation is known for; ``act_layer=None`` keeps the stack linear.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from leanconv._validate import check_conv_args, check_input
from leanconv.ops.padding import get_padding


class StackedConv2d(nn.Module):
    """``(kernel_size - 1) / 2`` stacked 3x3 convs; the first carries the stride."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 5,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        *,
        bias: bool = False,
        act_layer: Callable[[], nn.Module] | None = nn.ReLU,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        owner = "StackedConv2d"
        check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(
                f"{owner}: kernel_size={kernel_size} is invalid; expected an odd int >= 3 "
                f"(5 -> two 3x3, 7 -> three 3x3)"
            )
        if padding is not None and padding != get_padding(kernel_size, dilation):
            raise ValueError(
                f"{owner}: padding={padding!r} is invalid; only the same-style padding "
                f"{get_padding(kernel_size, dilation)} (or None) has a stacked equivalent"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        layers: list[nn.Module] = []
        for i in range((kernel_size - 1) // 2):
            if i:
                if norm_layer is not None:
                    layers.append(norm_layer(out_channels))
                if act_layer is not None:
                    layers.append(act_layer())
            layers.append(nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3,
                                    stride if i == 0 else 1, dilation, dilation, bias=bias))
        self.convs = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("StackedConv2d", x, self.in_channels)
        return self.convs(x)
