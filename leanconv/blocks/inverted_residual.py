"""Inverted residual with linear bottleneck.

M. Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018,
arXiv:1801.04381.

1x1 expansion (``t * C_in`` channels, skipped for t = 1) -> KxK depthwise (the pluggable
``dw_conv``: ``'depthwise'``, or ``'mixconv:k=3.5.7'`` for MixNet) -> optional SE -> 1x1
*linear* projection (no activation: a ReLU on the low-dimensional output destroys
information). The shortcut adds the input when stride is 1 and ``C_in == C_out``.
MACs per output pixel ``t C_in (C_in + K^2 + C_out)`` (stride 1).
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv._validate import check_input, check_int
from leanconv.blocks.conv_norm_act import ActLayer, ConvNormAct, NormLayer
from leanconv.ops.create_conv import ConvSpec
from leanconv.ops.mixed_conv import MixedGroupConv
from leanconv.ops.squeeze_excite import SqueezeExcite


def _pointwise(groups: int) -> ConvSpec:
    """1x1 conv factory: plain, or MixNet's grouped pointwise with ``groups`` groups."""
    if groups == 1:
        return "standard"

    def build(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int | None = None, dilation: int = 1, *, bias: bool = False
              ) -> nn.Module:
        return MixedGroupConv(in_channels, out_channels, (kernel_size,) * groups, stride,
                              padding, dilation, bias=bias)

    return build


class InvertedResidual(nn.Module):
    """MobileNetV2 block; ``expand_groups``/``project_groups`` > 1 give MixNet's grouped 1x1s,
    ``se_ratio`` > 0 adds squeeze-excite with ``C_in * se_ratio`` reduced channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        expand_ratio: float = 6,
        kernel_size: int = 3,
        dw_conv: ConvSpec = "depthwise",
        se_ratio: float = 0.0,
        act_layer: ActLayer = nn.ReLU6,
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        expand_groups: int = 1,
        project_groups: int = 1,
    ) -> None:
        super().__init__()
        owner = "InvertedResidual"
        check_int(owner, "in_channels", in_channels)
        check_int(owner, "out_channels", out_channels)
        check_int(owner, "stride", stride)
        if isinstance(expand_ratio, bool) or not isinstance(expand_ratio, int | float) or (
            expand_ratio < 1
        ):
            raise ValueError(f"{owner}: expand_ratio={expand_ratio!r} is invalid; expected a "
                             f"number >= 1")
        if not 0 <= se_ratio <= 1:
            raise ValueError(f"{owner}: se_ratio={se_ratio!r} is invalid; expected 0 <= se_ratio "
                             f"<= 1 (0: no squeeze-excite)")
        self.in_channels, self.out_channels = in_channels, out_channels
        mid = round(in_channels * expand_ratio)
        self.expand = (
            ConvNormAct(in_channels, mid, 1, conv=_pointwise(expand_groups),
                        norm_layer=norm_layer, act_layer=act_layer)
            if mid != in_channels else nn.Identity()
        )
        self.dw = ConvNormAct(mid, mid, kernel_size, stride, conv=dw_conv,
                              norm_layer=norm_layer, act_layer=act_layer)
        self.se = (
            SqueezeExcite(mid, rd_channels=max(1, int(in_channels * se_ratio)),
                          act_layer=act_layer)
            if se_ratio > 0 else nn.Identity()
        )
        self.project = ConvNormAct(mid, out_channels, 1, conv=_pointwise(project_groups),
                                   norm_layer=norm_layer, act_layer=None)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("InvertedResidual", x, self.in_channels)
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.use_residual else y
