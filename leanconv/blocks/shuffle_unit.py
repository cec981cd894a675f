"""ShuffleNet units.

X. Zhang et al., "ShuffleNet", CVPR 2018, arXiv:1707.01083; N. Ma et al., "ShuffleNet V2:
Practical Guidelines for Efficient CNN Architecture Design", ECCV 2018, arXiv:1807.11164.

``ShuffleUnitV1`` (ShuffleNet v1): 1x1 group conv -> channel shuffle -> 3x3 depthwise ->
1x1 group conv; stride 1 adds the input, stride 2 concatenates a 3x3 average-pooled input
(so the branch produces ``C_out - C_in`` channels); bottleneck width ``C_out / 4``.

``ShuffleUnitV2`` (ShuffleNet v2, guidelines G1-G4): stride 1 splits the channels in half,
keeps one half as it is and sends the other through 1x1 -> 3x3 depthwise -> 1x1 with equal
widths (G1), no group convs (G2), one branch (G3) and no element-wise add (G4); stride 2
feeds both branches the whole input. The halves are concatenated and shuffled (2 groups).

The 3x3 depthwise conv is the pluggable ``conv`` of both units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from leanconv._validate import check_choice, check_input, check_int
from leanconv.blocks.conv_norm_act import ActLayer, ConvNormAct, NormLayer
from leanconv.ops.channel_shuffle import ChannelShuffle
from leanconv.ops.create_conv import ConvSpec


class ShuffleUnitV1(nn.Module):
    """ShuffleNet v1 unit; ``first_group_conv=False`` for the first unit of stage 2."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        groups: int = 3,
        first_group_conv: bool = True,
        conv: ConvSpec = "depthwise",
        kernel_size: int = 3,
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        owner = "ShuffleUnitV1"
        check_int(owner, "in_channels", in_channels)
        check_int(owner, "out_channels", out_channels)
        check_int(owner, "groups", groups)
        check_choice(owner, "stride", stride, (1, 2))
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"{owner}: in_channels={in_channels} must equal "
                             f"out_channels={out_channels} at stride 1 (residual add)")
        if branch_out < 1:
            raise ValueError(f"{owner}: out_channels={out_channels} must exceed "
                             f"in_channels={in_channels} at stride 2 (concat with the input)")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        mid = out_channels // 4
        first = f"group:g={groups}" if first_group_conv else "standard"
        self.compress = ConvNormAct(in_channels, mid, 1, conv=first, norm_layer=norm_layer,
                                    act_layer=act_layer)
        self.shuffle = ChannelShuffle(groups) if first_group_conv else nn.Identity()
        self.dw = ConvNormAct(mid, mid, kernel_size, stride, conv=conv, norm_layer=norm_layer,
                              act_layer=None)
        self.expand = ConvNormAct(mid, branch_out, 1, conv=f"group:g={groups}",
                                  norm_layer=norm_layer, act_layer=None)
        self.act = act_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("ShuffleUnitV1", x, self.in_channels)
        y = self.expand(self.dw(self.shuffle(self.compress(x))))
        if self.stride == 1:
            return self.act(x + y)
        return self.act(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))


class ShuffleUnitV2(nn.Module):
    """ShuffleNet v2 unit (channel split, two branches, concat, shuffle)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        conv: ConvSpec = "depthwise",
        kernel_size: int = 3,
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer = nn.ReLU,
    ) -> None:
        super().__init__()
        owner = "ShuffleUnitV2"
        check_int(owner, "in_channels", in_channels)
        check_int(owner, "out_channels", out_channels)
        check_choice(owner, "stride", stride, (1, 2))
        if out_channels % 2:
            raise ValueError(f"{owner}: out_channels={out_channels} must be even (two halves)")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"{owner}: in_channels={in_channels} must equal "
                             f"out_channels={out_channels} at stride 1 (channel split)")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        half = out_channels // 2
        if stride == 2:
            self.branch1: nn.Module = nn.Sequential(
                ConvNormAct(in_channels, in_channels, kernel_size, stride, conv=conv,
                            norm_layer=norm_layer, act_layer=None),
                ConvNormAct(in_channels, half, 1, norm_layer=norm_layer, act_layer=act_layer),
            )
        else:
            self.branch1 = nn.Identity()
        self.branch2 = nn.Sequential(
            ConvNormAct(in_channels if stride == 2 else half, half, 1, norm_layer=norm_layer,
                        act_layer=act_layer),
            ConvNormAct(half, half, kernel_size, stride, conv=conv, norm_layer=norm_layer,
                        act_layer=None),
            ConvNormAct(half, half, 1, norm_layer=norm_layer, act_layer=act_layer),
        )
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("ShuffleUnitV2", x, self.in_channels)
        if self.stride == 1:
            kept, x = x.chunk(2, dim=1)
        else:
            kept = self.branch1(x)
        return self.shuffle(torch.cat([kept, self.branch2(x)], 1))
