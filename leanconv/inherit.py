"""Initialising an efficient operator from the dense conv it replaces (``convert``'s
``inherit_weights=True``). Each rule returns how it did it, for the conversion report:

* ``exact``: the new operator computes the same function (standard/dilated copy,
  HetConv p=1, DeformConv2d with zero offsets, a dense conv rebuilt from HetConv, group
  conv or depthwise-separable weights).
* ``truncated``: the dense weight restricted to the kernel positions the operator has
  (HetConv: its KxK kernels where it has them, the centre tap where it has a 1x1 kernel;
  group conv: the diagonal blocks, rows pre-permuted so a shuffle puts them back in place).
* ``least-squares``: depthwise-separable: for each input channel the best rank-``dm``
  approximation (truncated SVD) of its ``N x K^2`` slice of the dense weight, which is the
  least-squares optimum of depthwise-then-pointwise for that channel.
* ``fresh``: no meaningful mapping (MixConv, CompConv, stacked convs); default init kept.
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


@register_inherit_rule(nn.Conv2d)
def _dense(new: nn.Conv2d, dense: nn.Conv2d) -> str:
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


@register_inherit_rule(DeformConv2d)
def _deform(new: DeformConv2d, dense: nn.Conv2d) -> str:
    new.weight.copy_(dense.weight)
    _copy_bias(new.bias, dense)
    return "exact"  # offsets start at zero: the standard conv
