"""CompConv: compact convolution by divide-and-conquer on channels.

C. Zhang, Y. Xu, Y. Shen, "CompConv: A Compact Convolution Module for Efficient Feature
Learning", CVPR Workshops 2021, arXiv:2106.10486.

Structure for recursion depth ``d`` (the paper's eq. 3-5 and Figure 2), with
``C_prim = ceil(C_out / (2 * (2^d - 1)))``:

* ``X_B0 = W_B0 * X``: a KxK conv from all ``C_in`` input channels to ``C_prim`` channels
  (the smallest computing unit; it carries the stride).
* ``X_A0``, the tailing channels, derived from ``X_B0`` (not copied from the input, seed
  2.3): a KxK *depthwise* conv on the first ``C_prim - e`` channels of ``X_B0``, where
  ``e = 2 * (2^d - 1) * C_prim - C_out`` is the excess the seed trims from ``X_A0``. For
  small layers (``e >= C_prim``, e.g. C_out = 64 or 128 at d = 3) ``X_A0`` keeps one channel
  and the rest of the excess is trimmed from the last identity part ``X_A(d-1)``, which no
  later conv reads (the seed does not cover this case).
  Depthwise because the seed picks deriving ``X_A0`` from ``X_B0`` as the cheapest way to
  obtain it: it costs ``K^2 * (C_prim - e)`` MACs per pixel, negligible, and keeps every
  tailing channel a learned spatial function of ``X_B0``.
* level ``i = 1 .. d-1``: ``X_Bi = W_i * (X_A(i-1) (+) X_B(i-1))``, a KxK conv to
  ``2^i * C_prim`` channels, and ``X_Ai`` = ``2^i * C_prim`` channels copied from the input
  (identity: 0 FLOPs, 0 parameters). The copies take the input channels in order:
  ``X_A1 = X[:, :2C_prim]``, ``X_A2 = X[:, 2C_prim:6C_prim]``, ...; the shuffle at the end
  means stacked CompConvs copy different channels of the original features.
* output: all units ``(X_Ai (+) X_Bi)`` concatenated (``2 * (2^d - 1) * C_prim - e = C_out``
  channels, the paper's section 2.3: "integrate all intermediate results"), then a channel
  shuffle with ``gcd(C_out, 2^d)`` groups.

Stride: only ``X_B0`` is strided; every later conv runs at the output resolution, and the
identity copies are taken at the centre taps of the strided output grid (the pixels a strided
1x1 identity would read: subsampling, no averaging), so copies stay exact identities.

Adaptive depth (the paper's eq. 6): ``d = min(floor(log2(max(1, C_in / C0))) + 1, 3)``, lowered
to the largest depth the channel counts allow; ``depth=0`` is a standard conv.

MACs per output pixel (:meth:`CompConv2d.macs_per_pixel`, the paper's eq. 7 with this
tail)::

    K^2 * (C_in * C_prim + t + sum_{i=1}^{d-1} u_i * 2^i * C_prim)
    t = max(1, C_prim - e) tailing channels,  u_1 = C_prim + t,  u_i = 2^i * C_prim (i >= 2)

About 18% of a standard conv at ``C_in = C_out = 256``, c0=64 (d=3) and 28% at c0=128 (d=2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from leanconv._validate import check_conv_args, check_input, check_int
from leanconv.ops.channel_shuffle import ChannelShuffle
from leanconv.ops.padding import centre_offset, centre_taps, get_padding, resolve_padding

MAX_ADAPTIVE_DEPTH = 3


@dataclass(frozen=True)
class CompConvPlan:
    """Channel bookkeeping of a CompConv of depth ``depth >= 1``."""

    in_channels: int
    out_channels: int
    depth: int

    @property
    def prim(self) -> int:
        """``C_prim = ceil(C_out / (2 * (2^d - 1)))``."""
        return -(-self.out_channels // (2 * (2**self.depth - 1)))

    @property
    def excess(self) -> int:
        """Channels the full units have beyond ``C_out``: ``2 (2^d - 1) C_prim - C_out``."""
        return 2 * (2**self.depth - 1) * self.prim - self.out_channels

    @property
    def tail(self) -> int:
        """Channels of ``X_A0``: ``C_prim`` minus the excess, at least 1."""
        return max(1, self.prim - self.excess)

    @property
    def outs(self) -> list[int]:
        """Output channels of the level convs ``W_1 .. W_(d-1)``: ``2^i * C_prim``."""
        return [2**i * self.prim for i in range(1, self.depth)]

    @property
    def copies(self) -> list[int]:
        """Channels of the identity parts ``X_A1 .. X_A(d-1)``: ``2^i * C_prim``, the last one
        less what trimming ``X_A0`` to one channel could not absorb."""
        spill = self.excess - (self.prim - self.tail)
        return [*self.outs[:-1], self.outs[-1] - spill] if self.outs else []

    @property
    def level_channels(self) -> list[tuple[int, int]]:
        """(in, out) channels of the level convs ``W_1 .. W_(d-1)``."""
        ins = [self.prim + self.tail] + [2 * c for c in self.outs]
        return list(zip(ins, self.outs, strict=False))  # the last unit feeds no conv

    def problem(self) -> str | None:
        """Why these channel counts cannot have this depth, or None."""
        trimmed = self.prim - self.tail + sum(self.outs) - sum(self.copies)
        if trimmed != self.excess or min(self.copies, default=0) < 0:
            return (f"C_prim={self.prim} gives {self.excess} channels too many, more than "
                    f"the tailing and identity parts can drop, for "
                    f"out_channels={self.out_channels}")
        if sum(self.copies) > self.in_channels:
            return (f"the identity parts need {sum(self.copies)} input channels, "
                    f"in_channels={self.in_channels}")
        return None


def adaptive_depth(in_channels: int, c0: int) -> int:
    """The paper's eq. 6: ``min(floor(log2(max(1, C_in / C0))) + 1, 3)``."""
    return min(math.floor(math.log2(max(1.0, in_channels / c0))) + 1, MAX_ADAPTIVE_DEPTH)


class CompConv2d(nn.Module):
    """Compact divide-and-conquer convolution; see the module docstring for the structure."""

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
        c0: int = 128,
        depth: int | None = None,
    ) -> None:
        super().__init__()
        owner = "CompConv2d"
        check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
        check_int(owner, "c0", c0)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding = resolve_padding(owner, padding, kernel_size, dilation)
        if depth is None:
            depth = adaptive_depth(in_channels, c0)
            while depth > 0 and CompConvPlan(in_channels, out_channels, depth).problem():
                depth -= 1
        else:
            check_int(owner, "depth", depth, minimum=0)
            problem = depth and CompConvPlan(in_channels, out_channels, depth).problem()
            if problem:
                fits = next(d for d in range(depth, -1, -1)
                            if d == 0 or not CompConvPlan(in_channels, out_channels, d).problem())
                raise ValueError(f"{owner}: depth={depth} is invalid: {problem}; "
                                 f"the largest depth that fits is {fits}")
        self.depth = depth
        self.plan = CompConvPlan(in_channels, out_channels, depth) if depth else None
        k, pad = kernel_size, self.padding
        if self.plan is None:
            self.primary = nn.Conv2d(in_channels, out_channels, k, stride, pad, dilation,
                                     bias=bias)
            self.bias = None
            return
        centre_offset(owner, k, pad, dilation)
        same = get_padding(k, dilation)
        plan = self.plan
        self.primary = nn.Conv2d(in_channels, plan.prim, k, stride, pad, dilation, bias=False)
        self.tail = nn.Conv2d(plan.tail, plan.tail, k, 1, same, dilation, groups=plan.tail,
                              bias=False)
        self.levels = nn.ModuleList(
            nn.Conv2d(ci, co, k, 1, same, dilation, bias=False) for ci, co in plan.level_channels
        )
        self.shuffle = ChannelShuffle(math.gcd(out_channels, 2**depth))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # Per-output-channel scale, set only by inference folding: a BatchNorm after CompConv
        # cannot be folded into the identity channels (copies of the input), so its scale is
        # applied here together with the bias, in one pass.
        self.register_buffer("scale", None)

    def macs_per_pixel(self) -> int:
        """Analytic MACs per output pixel (module docstring); ``depth=0``: ``K^2 C_in C_out``."""
        k2 = self.kernel_size**2
        if self.plan is None:
            return k2 * self.in_channels * self.out_channels
        plan = self.plan
        levels = sum(ci * co for ci, co in plan.level_channels)
        return k2 * (self.in_channels * plan.prim + plan.tail + levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("CompConv2d", x, self.in_channels)
        if self.plan is None:
            return self.primary(x)
        b = self.primary(x)
        unit = torch.cat([self.tail(b[:, : self.plan.tail]), b], 1)
        units = [unit]
        if self.levels:
            source = centre_taps(x, self.kernel_size, self.stride, self.padding, self.dilation)
            start = 0
            for conv, n in zip(self.levels, self.plan.copies, strict=True):
                unit = torch.cat([source[:, start : start + n], conv(unit)], 1)
                units.append(unit)
                start += n
        y = self.shuffle(torch.cat(units, 1))
        if self.scale is not None:
            return torch.addcmul(self.bias.view(1, -1, 1, 1), y, self.scale.view(1, -1, 1, 1))
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        s = f"depth={self.depth}"
        if self.plan is not None:
            s += f", C_prim={self.plan.prim}, tail={self.plan.tail}, copies={self.plan.copies}"
        return s
