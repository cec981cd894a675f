"""Inception block (GoogLeNet), with 1x1 bottlenecks before the large kernels.

C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842.

Four parallel branches on the same input, concatenated on channels:
1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3 max-pool -> 1x1 projection.
The 1x1 reductions make the large kernels affordable; the 3x3 and 5x5 convs are the pluggable
``conv`` (``conv='stacked'`` turns the 5x5 into two 3x3s, the Inception-v2 factorisation).
Output channels: ``ch1x1 + ch3x3 + ch5x5 + pool_proj``.
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv._validate import check_input, check_int
from leanconv.blocks.conv_norm_act import ActLayer, ConvNormAct, NormLayer
from leanconv.ops.create_conv import ConvSpec


class InceptionBlock(nn.Module):
    """GoogLeNet Inception module with conv -> norm -> act units."""

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        conv: ConvSpec = "standard",
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        widths = {"in_channels": in_channels, "ch1x1": ch1x1, "ch3x3red": ch3x3red,
                  "ch3x3": ch3x3, "ch5x5red": ch5x5red, "ch5x5": ch5x5, "pool_proj": pool_proj}
        for name, value in widths.items():
            check_int("InceptionBlock", name, value)
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        unit = {"norm_layer": norm_layer, "act_layer": act_layer}
        self.branch1 = ConvNormAct(in_channels, ch1x1, 1, **unit)
        self.branch3 = nn.Sequential(ConvNormAct(in_channels, ch3x3red, 1, **unit),
                                     ConvNormAct(ch3x3red, ch3x3, 3, conv=conv, **unit))
        self.branch5 = nn.Sequential(ConvNormAct(in_channels, ch5x5red, 1, **unit),
                                     ConvNormAct(ch5x5red, ch5x5, 5, conv=conv, **unit))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, 1),
                                         ConvNormAct(in_channels, pool_proj, 1, **unit))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("InceptionBlock", x, self.in_channels)
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], 1)
