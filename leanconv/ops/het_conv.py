"""HetConv: heterogeneous kernel-based convolution.

P. Singh, V. K. Verma, P. Rai, V. P. Namboodiri, "HetConv: Heterogeneous Kernel-Based
Convolutions for Deep CNNs", CVPR 2019, arXiv:1903.04120.

Each of the ``N`` filters of a layer with ``M`` input channels has ``M/P`` KxK kernels and
``M - M/P`` 1x1 kernels. Per output pixel (the paper's eq. 1-3):

    standard:  M * N * K^2
    HetConv:   N * (M * K^2 / P + M - M / P)             (FL_K + FL_1)
    ratio:     1/P + (1 - 1/P) / K^2                     (P = 1 is a standard conv)

Parameters: ``N * (M/P * K^2 + M - M/P)`` (+ ``N`` with bias), exactly the paper's: a 1x1
weight on a channel that already has a KxK kernel would duplicate that kernel's centre tap,
so none is kept.

Layouts (``layout=``):

* ``'block'`` (default): filters and channels grouped contiguously: filters
  ``[g*N/P, (g+1)*N/P)`` have their KxK kernels on channels ``[g*M/P, (g+1)*M/P)``.
* ``'interleaved'`` (the paper's figure, index for index): filter ``j`` has its KxK kernels
  on the input channels ``i`` with ``(i - j) mod P == 0``.

Both are the same operator up to a fixed relabelling of input and output channels, so a
network trained from scratch (or converted: weight inheritance maps either layout) learns the
same thing with either. ``'block'`` is the default because it needs no channel gathers:
resnet20_cifar trains at 738 vs 365 images/s (batch 128, channels_last) and evaluates at 966
vs 304 images/s (batch 1000, NCHW) on a 2-core CPU with 2 threads.

Implementation: a KxK convolution with ``groups=P`` (the KxK kernels, in block order), then a
1x1 convolution whose ``P`` diagonal blocks are zero (the 1x1 kernels), evaluated at the
centre taps of the KxK output grid and accumulated into the KxK output by one GEMM with
``beta = 1`` (:func:`leanconv.ops.accumulate.add_conv1x1_`: no separate add pass).
The kernels therefore execute ``N * (M * K^2 / P + M)`` MACs per pixel: ``N * M / P`` more
than the analytic count (the multiplications by the zero diagonal of the 1x1 weight).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from leanconv._validate import (
    check_choice,
    check_conv_args,
    check_divides,
    check_input,
    check_int,
)
from leanconv.ops.accumulate import add_conv1x1_
from leanconv.ops.dense import dense_conv
from leanconv.ops.padding import centre_offset, centre_taps, resolve_padding

LAYOUTS = ("interleaved", "block")


def gather_channels(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[:, index]``, keeping channels_last storage channels_last."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return x.permute(0, 2, 3, 1).index_select(3, index).permute(0, 3, 1, 2)
    return x.index_select(1, index)


def dense_hetconv_weight(
    weight: torch.Tensor, weight_1x1: torch.Tensor | None, p: int,
    in_index: torch.Tensor | None = None, out_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """The dense (N, M, K, K) weight of a HetConv given in block order: ``weight`` (N, M/P, K, K)
    on the P diagonal blocks, ``weight_1x1`` (N, M, zero diagonal blocks) added at the centre
    tap; ``in_index``/``out_index`` (interleaved layout) reorder channels and filters."""
    n, k = weight.shape[0], weight.shape[-1]
    m = weight.shape[1] * p
    dense = weight.new_zeros(n, m, k, k)
    groups = torch.arange(p)
    dense.view(p, n // p, p, m // p, k, k)[groups, :, groups] = weight.view(
        p, n // p, m // p, k, k)
    if weight_1x1 is not None:
        dense[:, :, (k - 1) // 2, (k - 1) // 2] += weight_1x1
    if in_index is not None:
        dense = dense[out_index][:, torch.argsort(in_index)]
    return dense


class HetConv2d(nn.Module):
    """Heterogeneous-kernel convolution: ``M/p`` KxK and ``M - M/p`` 1x1 kernels per filter."""

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
        p: int = 4,
        layout: str = "block",
    ) -> None:
        super().__init__()
        owner = "HetConv2d"
        check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
        check_int(owner, "p", p)
        check_divides(owner, "p", p, in_channels=in_channels, out_channels=out_channels)
        check_choice(owner, "layout", layout, LAYOUTS)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.p, self.stride, self.dilation = kernel_size, p, stride, dilation
        self.padding = resolve_padding(owner, padding, kernel_size, dilation)
        centre_offset(owner, kernel_size, self.padding, dilation)
        self.layout = layout

        m, n = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(n, m // p, kernel_size, kernel_size))
        self.weight_1x1 = nn.Parameter(torch.empty(n, m - m // p)) if p > 1 else None
        self.bias = nn.Parameter(torch.empty(n)) if bias else None
        # Flat (N*M) positions of the 1x1 kernels in block order: off the P diagonal blocks.
        block_mask = self._block_kxk_mask()
        pw_index = (~block_mask).flatten().nonzero()[:, 0] if p > 1 else None
        self.register_buffer("_pw_index", pw_index, persistent=False)
        interleave = layout == "interleaved" and p > 1
        # block channel g*(M/p)+r is interleaved channel r*p+g (same for filters).
        in_index = (torch.arange(m) % (m // p)) * p + torch.arange(m) // (m // p)
        out_index = (torch.arange(n) % p) * (n // p) + torch.arange(n) // p
        self.register_buffer("_in_index", in_index if interleave else None, False)
        self.register_buffer("_out_index", out_index if interleave else None, False)
        # bias is in layout order; the grouped conv computes in block order
        self.register_buffer("_bias_index", out_index.argsort() if interleave else None, False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the true fan-in, as ``nn.Conv2d``."""
        bound = 1.0 / math.sqrt(self.fan_in)
        for param in (self.weight, self.weight_1x1, self.bias):
            if param is not None:
                nn.init.uniform_(param, -bound, bound)

    @property
    def fan_in(self) -> int:
        """Inputs of one filter: ``M/p * K^2 + M - M/p``."""
        m, k, p = self.in_channels, self.kernel_size, self.p
        return m // p * k * k + m - m // p

    def macs_per_pixel(self) -> int:
        """Analytic MACs per output pixel: ``N * (M * K^2 / P + M - M / P)`` (the paper's eq. 2)."""
        return self.out_channels * self.fan_in

    def _dense_1x1_block(self) -> torch.Tensor:
        """The 1x1 weight as an (N, M, 1, 1) tensor in block order, zero on the diagonal."""
        n, m = self.out_channels, self.in_channels
        flat = self.weight_1x1.new_zeros(n * m).index_copy(
            0, self._pw_index, self.weight_1x1.reshape(-1)
        )
        return flat.view(n, m, 1, 1)

    def to_dense_weight(self) -> torch.Tensor:
        """The equivalent dense (N, M, K, K) weight, in this module's layout.

        ``F.conv2d(x, het.to_dense_weight(), het.bias, stride, padding, dilation)`` equals
        ``het(x)``. Zeros mark the kernel positions HetConv does not have.
        """
        one = None if self.weight_1x1 is None else self._dense_1x1_block()[:, :, 0, 0]
        return dense_hetconv_weight(self.weight, one, self.p, self._in_index, self._out_index)

    def to_dense(self) -> nn.Conv2d:
        """The exactly equivalent ``nn.Conv2d``."""
        return dense_conv(self.to_dense_weight(), self.bias, self.stride, self.padding,
                          self.dilation)

    @torch.no_grad()
    def load_dense_weight(self, weight: torch.Tensor) -> None:
        """Set the kernels from a dense (N, M, K, K) weight: the KxK kernels where this layout
        has them, the centre tap where it has a 1x1 kernel (the inverse of
        :meth:`to_dense_weight` on the positions HetConv keeps)."""
        n, m, k, p = self.out_channels, self.in_channels, self.kernel_size, self.p
        if tuple(weight.shape) != (n, m, k, k):
            raise ValueError(f"HetConv2d.load_dense_weight: weight of shape "
                             f"{tuple(weight.shape)} is invalid; expected {(n, m, k, k)}")
        dense = weight.to(self.weight)
        if self._in_index is not None:
            dense = dense[torch.argsort(self._out_index)][:, self._in_index]
        groups = torch.arange(p)
        blocks = dense.reshape(p, n // p, p, m // p, k, k)[groups, :, groups]
        self.weight.copy_(blocks.reshape(n, m // p, k, k))
        if self.weight_1x1 is not None:
            centre = dense[:, :, (k - 1) // 2, (k - 1) // 2].reshape(-1)
            self.weight_1x1.copy_(centre[self._pw_index].view(n, m - m // p))

    def _block_kxk_mask(self) -> torch.Tensor:
        n, m, p = self.out_channels, self.in_channels, self.p
        return (torch.arange(n)[:, None] // (n // p)) == (torch.arange(m)[None, :] // (m // p))

    def kxk_mask(self) -> torch.Tensor:
        """Bool (N, M), in this module's layout: True where filter j has a KxK kernel on
        channel i (False: a 1x1 kernel)."""
        if self.layout == "interleaved":
            n, m, p = self.out_channels, self.in_channels, self.p
            return (torch.arange(m)[None, :] - torch.arange(n)[:, None]) % p == 0
        return self._block_kxk_mask()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("HetConv2d", x, self.in_channels)
        if self._in_index is not None:
            x = gather_channels(x, self._in_index)
        bias = self.bias
        if bias is not None and self._bias_index is not None:
            bias = bias.index_select(0, self._bias_index)
        y = F.conv2d(x, self.weight, bias, self.stride, self.padding, self.dilation, self.p)
        if self.weight_1x1 is not None:
            taps = centre_taps(x, self.kernel_size, self.stride, self.padding, self.dilation)
            y = add_conv1x1_(y, taps, self._dense_1x1_block()[:, :, 0, 0])
        if self._out_index is not None:
            y = gather_channels(y, self._out_index)
        return y

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"p={self.p}, stride={self.stride}, padding={self.padding}, layout={self.layout}"
        )
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        return s + ("" if self.bias is not None else ", bias=False")
