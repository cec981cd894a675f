"""Initialising an efficient operator from the dense conv it replaces (``convert``'s
``inherit_weights=True``). Each rule returns how it did it, for the conversion report:

* ``exact``: the new operator computes the same function (standard/dilated copy,
  HetConv p=1, DeformConv2d with zero offsets, a dense conv rebuilt from HetConv, group
  conv or depthwise-separable weights).
* ``truncated``: the dense weight restricted to the kernel positions the operator has
  (HetConv: its KxK kernels where it has them, the centre tap where it has a 1x1 kernel;
  group conv: the diagonal blocks, rows pre-permuted so a shuffle puts them back in place;
  a grouped or depthwise ``nn.Conv2d``: its diagonal blocks; MixConv and MixedGroupConv:
  each group's channel block, its kernel centred on the dense kernel (taps a larger kernel
  has beyond the dense one start at zero), see :func:`conv_tap_index`).
* ``least-squares``: depthwise-separable: for each input channel the best rank-``dm``
  approximation (truncated SVD) of its ``N x K^2`` slice of the dense weight, which is the
  least-squares optimum of depthwise-then-pointwise for that channel.
* ``fresh``: no meaningful mapping (CompConv, stacked convs); default init kept.

All of this is data-free. ``convert(..., calibration=images)`` then fits the weights on
images (:mod:`leanconv.calibration`): a layer-wise least-squares fit of each replaced layer
to the original layer's outputs, which also uses these rules to load a fitted dense weight
into an operator (exact on the positions the operator has).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from leanconv.ops.channel_shuffle import ChannelShuffle
from leanconv.ops.deform_conv import DeformConv2d
from leanconv.ops.dwsep_conv import DepthwiseSeparableConv2d
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.het_conv import HetConv2d
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv
from leanconv.registry import Registry

InheritRule = Callable[[nn.Module, nn.Conv2d], str]
INHERIT_RULES: Registry[InheritRule] = Registry("weight inheritance rule")


def register_inherit_rule(*types: type[nn.Module]) -> Callable[[InheritRule], InheritRule]:
    """Decorator: ``rule(new_module, dense_conv) -> description`` for modules of ``types``
    (and their subclasses without a rule of their own)."""
    return INHERIT_RULES.register(*types)


def _copy_bias(target: nn.Parameter | None, dense: nn.Conv2d) -> None:
    if target is not None and dense.bias is not None:
        target.copy_(dense.bias)


@torch.no_grad()
def inherit_weights(new: nn.Module, dense: nn.Conv2d) -> str:
    """Initialise ``new`` from ``dense`` by the rule of its class (or nearest registered base
    class); ``'fresh'`` if none."""
    rule = INHERIT_RULES.for_type(new)
    return "fresh" if rule is None else rule(new, dense)


def left_padding(conv: nn.Conv2d) -> tuple[int, int]:
    """The zero padding before the first row and column of ``conv`` (string paddings
    resolved as torch does: ``'same'`` puts ``total // 2`` first)."""
    if conv.padding == "valid":
        return (0, 0)
    if conv.padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel_size, conv.dilation,
                                                    strict=True))  # type: ignore[return-value]
    return tuple(conv.padding)  # type: ignore[return-value]


def conv_tap_index(
    conv: nn.Conv2d, in_offset: int, out_offset: int, kernel: tuple[int, int],
    padding: tuple[int, int], dilation: tuple[int, int],
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Where ``conv.weight``'s entries sit in a dense ``(N, M, *kernel)`` weight with that
    padding and dilation (and the same stride), ``conv`` reading input channels from
    ``in_offset`` and writing output channels from ``out_offset`` (a group of MixConv).

    Returns ``(index, inside)``: ``index`` four long tensors of ``conv.weight``'s shape
    (output channel, input channel, row, column of the dense weight) and ``inside`` a bool
    tensor of that shape marking the entries that have a place there: tap ``u`` reads input
    offset ``u d - p`` (``d``, ``p`` the conv's), which is dense tap ``(u d - p + P) / D``
    when that is an integer in ``[0, K)``. Grouped convs use their diagonal blocks."""
    n, c, kh, kw = conv.weight.shape
    out = torch.arange(n)
    group = out // (n // conv.groups)
    rows = (out_offset + out).view(n, 1, 1, 1)
    cols = (in_offset + group[:, None] * c + torch.arange(c)[None, :]).view(n, c, 1, 1)
    taps, valid = [], []
    for axis, pad in enumerate(left_padding(conv)):
        offset = torch.arange(conv.kernel_size[axis]) * conv.dilation[axis] - pad + padding[axis]
        tap = torch.div(offset, dilation[axis], rounding_mode="floor")
        valid.append((offset % dilation[axis] == 0) & (tap >= 0) & (tap < kernel[axis]))
        taps.append(tap.clamp(0, kernel[axis] - 1))
    index = (rows, cols, taps[0].view(1, 1, kh, 1), taps[1].view(1, 1, 1, kw))
    shape = (n, c, kh, kw)
    inside = (valid[0][:, None] & valid[1][None, :]).expand(shape)
    return tuple(t.expand(shape) for t in index), inside


def _load_taps(conv: nn.Conv2d, dense: nn.Conv2d, in_offset: int, out_offset: int) -> bool:
    """Set ``conv.weight`` from ``dense`` (:func:`conv_tap_index`), zero where it has no
    place; True when every entry had one."""
    index, inside = conv_tap_index(conv, in_offset, out_offset, dense.kernel_size,
                                   left_padding(dense), dense.dilation)
    weight = torch.zeros_like(conv.weight)
    weight[inside] = dense.weight[tuple(t[inside] for t in index)].to(weight)
    conv.weight.copy_(weight)
    return bool(inside.all())


@register_inherit_rule(nn.Conv2d)
def _dense(new: nn.Conv2d, dense: nn.Conv2d) -> str:
    if new.groups != 1 and dense.groups == 1 and (new.in_channels, new.out_channels,
                                                  new.stride) == (dense.in_channels,
                                                                  dense.out_channels,
                                                                  dense.stride):
        _load_taps(new, dense, 0, 0)  # depthwise / grouped: the diagonal blocks
        _copy_bias(new.bias, dense)
        return "truncated"
    if new.weight.shape != dense.weight.shape:
        return "fresh"
    new.weight.copy_(dense.weight)
    _copy_bias(new.bias, dense)
    same = (new.dilation, new.padding) == (dense.dilation, dense.padding)
    return "exact" if same else "copied (dilation changed)"


@register_inherit_rule(HetConv2d)
def _hetconv(new: HetConv2d, dense: nn.Conv2d) -> str:
    new.load_dense_weight(dense.weight)
    _copy_bias(new.bias, dense)
    return "exact" if new.p == 1 else "truncated"


@register_inherit_rule(GroupConv2d)
def _group(new: GroupConv2d, dense: nn.Conv2d) -> str:
    g, weight = new.groups, dense.weight
    n, m = weight.shape[:2]
    # output channel j of the layer is conv output perm[j] (identity without shuffle)
    perm = (new.shuffle.permutation(n) if isinstance(new.shuffle, ChannelShuffle)
            else torch.arange(n))
    target = torch.empty_like(new.conv.weight)
    for j in range(n):
        o = int(perm[j])
        group = o // (n // g)
        target[o] = weight[j, group * (m // g):(group + 1) * (m // g)]
    new.conv.weight.copy_(target)
    if new.conv.bias is not None and dense.bias is not None:
        new.conv.bias[perm] = dense.bias
    return "exact" if g == 1 else "truncated"


@register_inherit_rule(DepthwiseSeparableConv2d)
def _dwsep(new: DepthwiseSeparableConv2d, dense: nn.Conv2d) -> str:
    if not (isinstance(new.norm, nn.Identity) and isinstance(new.act, nn.Identity)):
        return "fresh"
    n, m, kh, kw = dense.weight.shape
    rank = new.depthwise.out_channels // m
    # per input channel i: W[:, i] (N x K^2) ~ pw[:, i*r:(i+1)*r] @ dw[i*r:(i+1)*r]
    u, s, vh = torch.linalg.svd(dense.weight.permute(1, 0, 2, 3).reshape(m, n, kh * kw),
                                full_matrices=False)
    root = s[:, :rank].sqrt()
    pointwise = u[:, :, :rank] * root[:, None, :]           # (M, N, r)
    depthwise = vh[:, :rank, :] * root[:, :, None]          # (M, r, K^2)
    new.depthwise.weight.copy_(depthwise.reshape(m * rank, 1, kh, kw))
    new.pointwise.weight.copy_(pointwise.permute(1, 0, 2).reshape(n, m * rank, 1, 1))
    _copy_bias(new.pointwise.bias, dense)
    return "exact" if rank >= min(n, kh * kw) else "least-squares"


@register_inherit_rule(MixConv2d, MixedGroupConv)
def _mixed(new: MixConv2d | MixedGroupConv, dense: nn.Conv2d) -> str:
    if (dense.groups != 1 or new.in_channels != dense.in_channels
            or new.out_channels != dense.out_channels
            or any(conv.stride != dense.stride for conv in new.convs)):
        return "fresh"
    complete, in_offset, out_offset = True, 0, 0
    for conv in new.convs:
        complete &= _load_taps(conv, dense, in_offset, out_offset)
        if conv.bias is not None and dense.bias is not None:
            conv.bias.copy_(dense.bias[out_offset:out_offset + conv.out_channels])
        in_offset += conv.in_channels
        out_offset += conv.out_channels
    one = len(new.convs) == 1 and new.convs[0].groups == 1
    same = one and (new.convs[0].kernel_size, new.convs[0].dilation) == (dense.kernel_size,
                                                                         dense.dilation)
    return "exact" if complete and same else "truncated"


@register_inherit_rule(DeformConv2d)
def _deform(new: DeformConv2d, dense: nn.Conv2d) -> str:
    new.weight.copy_(dense.weight)
    _copy_bias(new.bias, dense)
    return "exact"  # offsets start at zero: the standard conv
