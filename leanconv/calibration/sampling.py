"""Sampled output positions and the input patches under them.

A convolution with kernel ``(K_h, K_w)``, stride ``s``, zero padding ``p`` and dilation ``d``
computes at output position ``(b, i, j)``

    y[b, o, i, j] = sum_c W[o].reshape(-1)[c] * a(b, i, j)[c]  (+ bias[o])
    a(b, i, j)[m K_h K_w + u K_w + v] = x_pad[b, m, i s_h + u d_h, j s_w + v d_w]

with ``x_pad`` the input zero-padded by ``p`` on each side: ``a`` is the patch in the column
order of ``W[o].reshape(-1)``. A least-squares fit needs these patches only at the sampled
positions, so :class:`PatchSampler` pads the input once (channel-major: one row of
``B H_pad W_pad`` pixels per channel) and gathers, a chunk of positions at a time, the pixel
of every tap and position from each channel row, which is directly the transposed patch
matrix ``A^T`` that a Gram multiplies; it never unfolds the whole input (``F.unfold`` of
resnet50's layer1 input for 256 images is 1.8 GB).

Positions are drawn uniformly without replacement from all ``B H_out W_out`` output pixels
with a ``torch.Generator`` seeded from the layer's name (:func:`layer_seed`), so a fit is
reproducible and does not depend on the global RNG.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Geometry:
    """Kernel, stride, zero padding and dilation of a conv, each ``(height, width)``."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    @property
    def taps(self) -> int:
        """Kernel positions ``K_h K_w``."""
        return self.kernel[0] * self.kernel[1]

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial output size on a ``height x width`` input."""
        return tuple(  # type: ignore[return-value]
            (size + 2 * p - d * (k - 1) - 1) // s + 1
            for size, k, s, p, d in zip((height, width), self.kernel, self.stride,
                                        self.padding, self.dilation, strict=True))


def layer_seed(name: str) -> int:
    """A seed from a layer's name, the same in every process (unlike ``hash``)."""
    return zlib.crc32(name.encode("utf-8"))


def sample_positions(shape: tuple[int, int, int], samples: int, seed: int) -> torch.Tensor:
    """``min(samples, B H W)`` flat indices into ``(B, H, W)`` output positions, drawn
    uniformly without replacement with a generator seeded by ``seed``, sorted (for locality
    of the gathers; the order does not matter to a least-squares fit)."""
    total = shape[0] * shape[1] * shape[2]
    if samples >= total:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(total, generator=generator)[:samples]
    return torch.from_numpy(np.sort(chosen.numpy()))  # torch.sort is 100x slower on 2 cores


def unravel(positions: torch.Tensor, shape: tuple[int, int, int]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(b, i, j)`` of flat indices into ``(B, H, W)``."""
    _, height, width = shape
    return positions // (height * width), positions // width % height, positions % width


def gather_outputs(y: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``(S, C)``: the rows ``y[b, :, i, j]`` of a ``(B, C, H, W)`` map at ``positions``."""
    batch, _, height, width = y.shape
    b, i, j = unravel(positions.to(y.device), (batch, height, width))
    return y[b, :, i, j]


def default_chunk(columns: int, budget: int = 1 << 25) -> int:
    """Positions per chunk so that one chunk of patches holds about ``budget`` values
    (128 MB in float32)."""
    return max(64, budget // max(1, columns))


class PatchSampler:
    """The patches of ``x`` (B, M, H, W) under sampled output positions of a conv with
    ``geometry``, in ``W[o].reshape(-1)`` column order (module docstring).

    ``output_shape`` is ``(B, H_out, W_out)``, the grid ``positions`` index. Patches are
    computed in ``dtype`` (float64 for a float64 input, else float32).
    """

    def __init__(self, x: torch.Tensor, geometry: Geometry, positions: torch.Tensor,
                 output_shape: tuple[int, int, int]) -> None:
        batch, channels, height, width = x.shape
        expected = (batch, *geometry.output_size(height, width))
        if tuple(output_shape) != expected:
            raise ValueError(f"PatchSampler: a conv with {geometry} gives outputs of shape "
                             f"{expected} on an input of shape {tuple(x.shape)}, not the "
                             f"target's {tuple(output_shape)}")
        self.dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        self.geometry, self.channels = geometry, channels
        (ph, pw), (sh, sw), (dh, dw) = geometry.padding, geometry.stride, geometry.dilation
        padded = F.pad(x.detach().to(self.dtype).transpose(0, 1), (pw, pw, ph, ph))
        self._planes = padded.contiguous().view(channels, -1)  # (M, B H_pad W_pad)
        hp, wp = height + 2 * ph, width + 2 * pw
        b, i, j = unravel(positions.to(x.device), expected)
        self._base = (b * hp + i * sh) * wp + j * sw
        u = torch.arange(geometry.kernel[0], device=x.device)[:, None]
        v = torch.arange(geometry.kernel[1], device=x.device)[None, :]
        self._offsets = (u * dh * wp + v * dw).reshape(-1)

    def __len__(self) -> int:
        return len(self._base)

    @property
    def columns(self) -> int:
        """Patch length ``M K_h K_w``."""
        return self.channels * self.geometry.taps

    def patches(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """``(S_chunk, M K_h K_w)``: the patches of positions ``start:stop``."""
        return self.patches_t(start, stop).T

    def patches_t(self, start: int = 0, stop: int | None = None, *, ones: bool = False
                  ) -> torch.Tensor:
        """The transposed patches ``(M K_h K_w, S_chunk)``, contiguous (what a Gram
        ``A^T A`` multiplies); ``ones=True`` appends a row of ones (a bias column of ``A``)."""
        base = self._base[start:stop]
        index = (self._offsets[:, None] + base[None, :]).reshape(-1)  # (tap, position)
        out = self._planes.new_empty(self.columns + ones, len(base))
        torch.index_select(self._planes, 1, index,
                           out=out[:self.columns].view(self.channels, -1))
        if ones:
            out[-1] = 1.0
        return out

    def chunks(self, extra_columns: int = 0) -> list[tuple[int, int]]:
        """``(start, stop)`` ranges covering every position, sized by :func:`default_chunk`."""
        step = default_chunk(self.columns + extra_columns)
        return [(s, min(s + step, len(self))) for s in range(0, len(self), step)]
