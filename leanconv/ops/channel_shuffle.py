"""Channel shuffle (ShuffleNet v1, seed 002; also seed 004 section 7).

With ``g`` groups of ``n = C / g`` channels, the shuffle reshapes the channel axis to
``(g, n)``, transposes it to ``(n, g)`` and flattens it back: output channel ``j * g + i`` is
input channel ``i * n + j``. It moves data but computes nothing (0 FLOPs), and costs one read
and one write of the tensor (ShuffleNet V2's memory access cost). The inverse permutation is
the same operation with ``n`` groups, provided as ``inverse=True`` / :meth:`inverse`.
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv.ops._validate import check_input, check_int, divisors


def channel_shuffle(x: torch.Tensor, groups: int, *, inverse: bool = False) -> torch.Tensor:
    """Shuffle the channels of an (N, C, H, W) tensor; ``inverse=True`` undoes it.

    Written with ``view``/``transpose`` so that export produces Reshape/Transpose, and the
    memory format of the input (NCHW or channels_last) is kept.
    """
    check_input("channel_shuffle", x, channels=None)
    check_int("channel_shuffle", "groups", groups)
    b, c, h, w = x.shape
    if c % groups:
        raise ValueError(
            f"channel_shuffle: {c} channels are not divisible by groups={groups}; "
            f"choose groups in {divisors(c)}"
        )
    rows, cols = (c // groups, groups) if inverse else (groups, c // groups)
    channels_last = x.is_contiguous(memory_format=torch.channels_last)
    if channels_last and not x.is_contiguous():
        # NHWC storage: permute the channel axis in the last dimension.
        y = x.permute(0, 2, 3, 1).reshape(b, h, w, rows, cols).transpose(3, 4)
        return y.reshape(b, h, w, c).permute(0, 3, 1, 2)
    return x.reshape(b, rows, cols, h, w).transpose(1, 2).reshape(b, c, h, w)


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle with ``groups`` groups (seed 002, ShuffleNet v1).

    Output channel ``j * g + i`` = input channel ``i * (C / g) + j``. ``inverse=True`` applies
    the inverse permutation. 0 parameters, 0 FLOPs.
    """

    def __init__(self, groups: int, *, inverse: bool = False) -> None:
        super().__init__()
        self.groups = check_int("ChannelShuffle", "groups", groups)
        self.inverse_ = bool(inverse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups, inverse=self.inverse_)

    def inverse(self) -> ChannelShuffle:
        """The module that undoes this one."""
        return ChannelShuffle(self.groups, inverse=not self.inverse_)

    def permutation(self, channels: int) -> torch.Tensor:
        """Index tensor ``perm`` with ``y[:, k] = x[:, perm[k]]`` for ``channels`` channels."""
        index = torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1)
        return self(index).view(channels).long()

    def extra_repr(self) -> str:
        return f"groups={self.groups}" + (", inverse=True" if self.inverse_ else "")
