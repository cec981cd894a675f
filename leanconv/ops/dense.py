"""Building the dense ``nn.Conv2d`` that an operator is exactly equal to (for
``to_dense()``, the converter's ``to='standard'`` and inference folding)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def dense_conv(weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int,
               dilation: int) -> nn.Conv2d:
    """An ``nn.Conv2d`` holding ``weight`` (C_out, C_in, K, K) and ``bias``."""
    out_channels, in_channels, kernel = weight.shape[0], weight.shape[1], weight.shape[-1]
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation,
                     bias=bias is not None, device=weight.device, dtype=weight.dtype)
    conv.weight.copy_(weight)
    if bias is not None:
        conv.bias.copy_(bias)
    return conv
