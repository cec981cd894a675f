"""ResNet residual blocks: 1x1 bottlenecks and skip connections.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385.

``Bottleneck``: 1x1 reduce -> KxK (the pluggable spatial ``conv``, carrying the stride) ->
1x1 expand, added to the shortcut (identity, or a strided 1x1 conv + norm when the shape
changes), then the activation. The 1x1 reduction is what makes the KxK conv cheap:
``C_mid = C_out / 4`` cuts its MACs by 16x. ``BasicBlock``: two KxK convs (ResNet-18/34).

Shortcuts that change shape: ``'projection'`` (a strided 1x1 conv + norm, the ResNet paper's
option B, torchvision's) or ``'pad'`` (option A, parameter-free: subsample by the stride and
append zero channels, as the paper's CIFAR ResNets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from leanconv._validate import check_choice, check_input, check_int
from leanconv.blocks.conv_norm_act import ActLayer, ConvNormAct, NormLayer
from leanconv.ops.create_conv import ConvSpec

SHORTCUTS = ("projection", "pad")


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: ``x[:, :, ::s, ::s]`` with ``extra`` zero channels appended."""

    def __init__(self, stride: int, extra: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra))


def _shortcut(owner: str, in_channels: int, out_channels: int, stride: int,
              norm_layer: NormLayer | None, kind: str) -> nn.Module:
    check_choice(owner, "shortcut", kind, SHORTCUTS)
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "pad":
        if out_channels < in_channels:
            raise ValueError(f"{owner}: shortcut='pad' needs out_channels >= in_channels, got "
                             f"{out_channels} < {in_channels}; use shortcut='projection'")
        return ZeroPadShortcut(stride, out_channels - in_channels)
    return ConvNormAct(in_channels, out_channels, 1, stride, norm_layer=norm_layer,
                       act_layer=None)


class Bottleneck(nn.Module):
    """1x1 -> KxK ``conv`` -> 1x1 with a residual shortcut (ResNet-50 style, stride on KxK)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        mid_channels: int | None = None,
        kernel_size: int = 3,
        conv: ConvSpec = "standard",
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer = nn.ReLU,
        shortcut: str = "projection",
    ) -> None:
        super().__init__()
        owner = "Bottleneck"
        check_int(owner, "in_channels", in_channels)
        check_int(owner, "out_channels", out_channels)
        check_int(owner, "stride", stride)
        mid = max(1, out_channels // 4) if mid_channels is None else mid_channels
        check_int(owner, "mid_channels", mid)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv1 = ConvNormAct(in_channels, mid, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(mid, mid, kernel_size, stride, conv=conv, norm_layer=norm_layer,
                                 act_layer=act_layer)
        self.conv3 = ConvNormAct(mid, out_channels, 1, norm_layer=norm_layer, act_layer=None)
        self.shortcut = _shortcut(owner, in_channels, out_channels, stride, norm_layer, shortcut)
        self.act = act_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("Bottleneck", x, self.in_channels)
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class BasicBlock(nn.Module):
    """Two KxK ``conv`` layers with a residual shortcut (ResNet-18/34 style)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        kernel_size: int = 3,
        conv: ConvSpec = "standard",
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer = nn.ReLU,
        shortcut: str = "projection",
    ) -> None:
        super().__init__()
        owner = "BasicBlock"
        check_int(owner, "in_channels", in_channels)
        check_int(owner, "out_channels", out_channels)
        check_int(owner, "stride", stride)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv1 = ConvNormAct(in_channels, out_channels, kernel_size, stride, conv=conv,
                                 norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(out_channels, out_channels, kernel_size, conv=conv,
                                 norm_layer=norm_layer, act_layer=None)
        self.shortcut = _shortcut(owner, in_channels, out_channels, stride, norm_layer, shortcut)
        self.act = act_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("BasicBlock", x, self.in_channels)
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))
