"""Conv -> norm -> activation, the unit every block is made of."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from torch import nn

from leanconv.ops.create_conv import ConvSpec, create_conv

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[[], nn.Module]


class ConvNormAct(nn.Sequential):
    """``conv`` (any spec of :func:`leanconv.create_conv`), then ``norm_layer``, then
    ``act_layer``; either may be None. Children are named ``conv``, ``bn``, ``act``.

    The positional arguments are ``nn.Conv2d``'s; ``conv_kwargs`` (``bias``, operator
    keywords) go to :func:`leanconv.create_conv`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        dilation: int | None = None,
        *,
        conv: ConvSpec = "standard",
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer | None = nn.ReLU,
        **conv_kwargs: Any,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=create_conv(conv, in_channels, out_channels, kernel_size, stride, padding,
                             dilation, **conv_kwargs)
        )
        if norm_layer is not None:
            layers["bn"] = norm_layer(out_channels)
        if act_layer is not None:
            layers["act"] = act_layer()
        super().__init__(layers)
        self.in_channels, self.out_channels = in_channels, out_channels
