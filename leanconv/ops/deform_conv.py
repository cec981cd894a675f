"""Deformable convolution.

J. Dai et al., "Deformable Convolutional Networks", ICCV 2017, arXiv:1703.06211; modulation:
X. Zhu, H. Hu, S. Lin, J. Dai, "Deformable ConvNets v2: More Deformable, Better Results",
CVPR 2019, arXiv:1811.11168.

``y(p) = sum_k w_k * x(p + p_k + dp_k)`` (``* m_k`` when modulated, DCNv2), where the
offsets ``dp`` (and masks ``m``) are predicted by a plain KxK conv on the input with the
same stride, padding and dilation. That conv starts at zero, so at initialisation the
offsets are zero and the layer is exactly a standard conv. The modulation is
``m = 2 * sigmoid(logit)`` (DCNv2 uses ``sigmoid``, which halves the output at
initialisation): 1 at initialisation, so the modulated layer also starts as the standard
conv it replaces. Sampling is bilinear, done by ``torchvision.ops.deform_conv2d``.

Parameters: ``C_out C_in K^2`` (+ ``C_out``) for the kernel and
``C_in * c K^2 * K^2 + c K^2`` for the offset conv, ``c = 2 * offset_groups``
(``3 * offset_groups`` when modulated). MACs per output pixel
(:meth:`DeformConv2d.macs_per_pixel`): ``K^2 C_in (c K^2 + C_out + 4 [+ 1])``: the offset
conv, the kernel, 4 per bilinear sample (+ 1 for the modulation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import torch
from torch import nn

from leanconv._validate import check_conv_args, check_divides, check_input, check_int
from leanconv.ops.padding import resolve_padding


@cache
def _deform_conv2d() -> Callable[..., torch.Tensor]:
    """torchvision's kernel, imported on first use: importing torchvision takes about 1.2 s,
    which every ``import leanconv`` would otherwise pay."""
    from torchvision.ops import deform_conv2d

    return deform_conv2d


class DeformConv2d(nn.Module):
    """KxK deformable conv with its own zero-initialised offset (and mask) predictor."""

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
        offset_groups: int = 1,
        modulated: bool = False,
    ) -> None:
        super().__init__()
        owner = "DeformConv2d"
        check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
        check_int(owner, "offset_groups", offset_groups)
        check_divides(owner, "offset_groups", offset_groups, in_channels=in_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding = resolve_padding(owner, padding, kernel_size, dilation)
        self.offset_groups, self.modulated = offset_groups, bool(modulated)
        taps = offset_groups * kernel_size * kernel_size
        self.offset = nn.Conv2d(in_channels, taps * (3 if modulated else 2), kernel_size, stride,
                                self.padding, dilation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kernel as ``nn.Conv2d``; offset (and mask logit) predictor at exactly zero."""
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size**2)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def macs_per_pixel(self) -> int:
        """Analytic MACs per output pixel: ``K^2 C_in (c K^2 + C_out + 4 [+ 1])``."""
        taps = self.kernel_size**2
        predicted = self.offset.out_channels
        return taps * self.in_channels * (predicted + self.out_channels + 4 + self.modulated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("DeformConv2d", x, self.in_channels)
        predicted = self.offset(x)
        mask = None
        if self.modulated:
            split = 2 * self.offset_groups * self.kernel_size**2
            predicted, logits = predicted[:, :split], predicted[:, split:]
            mask = 2.0 * torch.sigmoid(logits)
        y = _deform_conv2d()(x, predicted, self.weight, self.bias, self.stride, self.padding,
                          self.dilation, mask)
        if x.is_contiguous(memory_format=torch.channels_last):  # torchvision returns NCHW
            y = y.contiguous(memory_format=torch.channels_last)
        return y
