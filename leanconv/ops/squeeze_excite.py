"""Squeeze-and-Excitation channel attention.

J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507.

``s = gate(W_2 act(W_1 avgpool(x)))``, ``y = x * s``: global average pooling squeezes each
channel to a scalar, two 1x1 convs (C -> r -> C) excite, a gate (sigmoid) rescales.
Parameters ``2 C r + r + C``; MACs ``2 C r`` per image plus ``C H W`` for the scaling.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from leanconv._validate import check_input, check_int


class SqueezeExcite(nn.Module):
    """SE block; ``rd_channels`` (reduced width) defaults to ``round(channels * rd_ratio)``."""

    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: float = 1 / 16,
        rd_channels: int | None = None,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        gate_layer: Callable[[], nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        owner = "SqueezeExcite"
        check_int(owner, "channels", channels)
        if rd_channels is None:
            if isinstance(rd_ratio, bool) or not isinstance(rd_ratio, int | float) or not (
                0 < rd_ratio <= 1
            ):
                raise ValueError(f"{owner}: rd_ratio={rd_ratio!r} is invalid; expected 0 < "
                                 f"rd_ratio <= 1")
            rd_channels = max(1, round(channels * rd_ratio))
        check_int(owner, "rd_channels", rd_channels)
        self.channels = channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, rd_channels, 1)
        self.act = act_layer()
        self.expand = nn.Conv2d(rd_channels, channels, 1)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("SqueezeExcite", x, self.channels)
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
