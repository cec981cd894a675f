"""HetConv in inference form: the 1x1 weight stored dense (zero diagonal blocks), BN folded in.

:class:`~leanconv.ops.HetConv2d` keeps the paper's parameter set (``M/P`` KxK and ``M - M/P``
1x1 kernels per filter; HetConv, CVPR 2019) and scatters its 1x1 kernels into a dense (N, M)
matrix on every forward. After training that matrix is a constant: :class:`FoldedHetConv2d`
stores it, together with the per-filter BatchNorm scale and shift, and runs two kernels per call
(the HetConv paper's eq. 2, FL_K + FL_1):

    y  = conv2d(x, W_K, b, groups=P)               grouped KxK part, bias = folded BN shift
    y += x_centre @ W_1^T                          1x1 part, one GEMM with beta = 1

:meth:`FoldedHetConv2d.to_dense` gives the single dense KxK conv (``fold(hetconv='dense')``),
which executes ``M N K^2`` MACs instead of ``N (M K^2 / P + M)`` but is one kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from leanconv.cost.analytic import per_output_pixel_macs, register_analytic_macs
from leanconv.ops.accumulate import add_conv1x1_
from leanconv.ops.dense import dense_conv
from leanconv.ops.het_conv import HetConv2d, dense_hetconv_weight, gather_channels
from leanconv.ops.padding import centre_taps


def fuse_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d | None,
            index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(W * s, (b - mean) * s + beta)`` with ``s = gamma / sqrt(var + eps)`` per output row
    (``torch.nn.utils.fusion``); ``index`` reorders the BN channels to the weight's rows."""
    if bn is None:
        return weight, bias
    stats = [bn.running_mean, bn.running_var, bn.weight, bn.bias]
    if index is not None:
        stats = [None if s is None else s[index] for s in stats]
    mean, var, gamma, beta = stats
    w, b = fuse_conv_bn_weights(weight, bias, mean, var, bn.eps, gamma, beta)
    return w.detach(), b.detach()


class FoldedHetConv2d(nn.Module):
    """Inference-only HetConv: grouped KxK conv, then the dense 1x1 part accumulated in."""

    def __init__(self, het: HetConv2d, bn: nn.BatchNorm2d | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = het.in_channels, het.out_channels
        self.kernel_size, self.p, self.stride = het.kernel_size, het.p, het.stride
        self.padding, self.dilation, self.layout = het.padding, het.dilation, het.layout
        # HetConv2d computes in block order; the BN (like HetConv2d.bias) is in layout order.
        block = het._bias_index
        bias = het.bias if het.bias is None or block is None else het.bias[block]
        weight, bias = fuse_bn(het.weight.detach(), bias, bn, block)
        one = het._dense_1x1_block().detach() if het.weight_1x1 is not None else None
        if one is not None:
            one = fuse_bn(one, None, bn, block)[0][:, :, 0, 0].contiguous()
        if bias is None and bn is not None:
            bias = weight.new_zeros(self.out_channels)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.weight_1x1 = None if one is None else nn.Parameter(one, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)
        self.register_buffer("_in_index", het._in_index, persistent=False)
        self.register_buffer("_out_index", het._out_index, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._in_index is not None:
            x = gather_channels(x, self._in_index)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.p)
        if self.weight_1x1 is not None:
            taps = centre_taps(x, self.kernel_size, self.stride, self.padding, self.dilation)
            y = add_conv1x1_(y, taps, self.weight_1x1)
        if self._out_index is not None:
            y = gather_channels(y, self._out_index)
        return y

    def macs_per_pixel(self) -> int:
        """Analytic MACs per output pixel, as HetConv: ``N * (M * K^2 / P + M - M / P)``."""
        m, k, p = self.in_channels, self.kernel_size, self.p
        return self.out_channels * (m // p * k * k + m - m // p)

    def to_dense(self) -> nn.Conv2d:
        """The single dense KxK conv with the same output (zeros where HetConv has no kernel)."""
        dense = dense_hetconv_weight(self.weight, self.weight_1x1, self.p, self._in_index,
                                     self._out_index)
        bias = self.bias
        if bias is not None and self._out_index is not None:
            bias = bias[self._out_index]
        return dense_conv(dense, bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"p={self.p}, stride={self.stride}, layout={self.layout}")


register_analytic_macs(FoldedHetConv2d)(per_output_pixel_macs)
