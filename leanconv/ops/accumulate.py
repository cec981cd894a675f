"""Accumulate a 1x1 convolution into an existing output: ``y += conv1x1(x, W)`` in one GEMM.

A 1x1 convolution is a matrix product over channels. Written as ``y + F.conv2d(x, W)`` it costs
a GEMM into a fresh tensor plus an elementwise pass over ``y``; BLAS GEMMs take ``beta = 1`` and
add into their output instead, which removes the extra pass and the temporary:

    channels_last:  y.view(B*H*W, N)  +=  x.view(B*H*W, M) @ W^T        (``addmm_``)
    NCHW:           y.view(B, N, H*W) +=  W @ x.view(B, M, H*W)          (``baddbmm_``)

HetConv adds its 1x1 kernels to the grouped KxK output this way (issue: "the 1x1 part
accumulated into the grouped KxK output, no separate add pass").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def add_conv1x1_(y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``y += F.conv2d(x, weight[:, :, None, None])`` in place (or out of place when ``y``'s
    layout does not allow it) and return the sum.

    ``y``: (B, N, H, W); ``x``: (B, M, H, W) on the same grid; ``weight``: (N, M).
    """
    b, n, h, w = y.shape
    m = x.shape[1]
    # under autocast y is cast, weight is not; an exported graph (ONNX) gets plain Conv + Add
    # nodes (a functionalised in-place GEMM on a permuted view exports as extra reshapes)
    fused = y.dtype == x.dtype == weight.dtype and not torch.compiler.is_exporting()
    if fused and y.is_contiguous(memory_format=torch.channels_last) and b * h * w > 1:
        y.permute(0, 2, 3, 1).view(b * h * w, n).addmm_(
            x.permute(0, 2, 3, 1).reshape(b * h * w, m), weight.t())
        return y
    if fused and y.is_contiguous():
        y.view(b, n, h * w).baddbmm_(weight.expand(b, n, m), x.reshape(b, m, h * w))
        return y
    return y + F.conv2d(x, weight[:, :, None, None])
