"""BatchNorm folding rules: one function per operator, ``rule(op, bn) -> folded op``.

In eval mode a BatchNorm is a per-channel affine map ``y = s * x + t`` with
``s = gamma / sqrt(var + eps)`` and ``t = beta - s * mean``. After a convolution it folds into
the filters: ``W' = s * W`` (row-wise) and ``b' = s * b + t``. Each operator knows where its
output channels come from, so each has its own rule; adding an operator means registering one
(``torch/utils/flop_counter.py``'s registry is the model). ``bn=None`` asks for the operator's
inference form without a BatchNorm to absorb.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from leanconv.deploy.folded_hetconv import FoldedHetConv2d, fuse_bn
from leanconv.ops.channel_shuffle import ChannelShuffle
from leanconv.ops.comp_conv import CompConv2d
from leanconv.ops.deform_conv import DeformConv2d
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.het_conv import HetConv2d
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv
from leanconv.registry import Registry

FoldRule = Callable[[nn.Module, nn.BatchNorm2d | None], nn.Module]
FOLD_RULES: Registry[FoldRule] = Registry("BatchNorm fold rule")


def register_fold_rule(*types: type[nn.Module]) -> Callable[[FoldRule], FoldRule]:
    """Decorator: ``rule`` folds a following BatchNorm into modules of ``types``."""
    return FOLD_RULES.register(*types)


def fold_rule(module: nn.Module) -> FoldRule | None:
    """The rule of ``module``'s class or its nearest registered base class (a subclass of
    ``nn.Conv2d`` such as timm's ``Conv2dSame`` still computes ``conv(x; W) + b``)."""
    return FOLD_RULES.for_type(module)


def can_fold(bn: nn.Module) -> bool:
    """A BatchNorm2d that uses running statistics in eval mode."""
    return isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None


def _fold_into_weight(op: nn.Module, bn: nn.BatchNorm2d | None,
                      index: torch.Tensor | None = None) -> nn.Module:
    """A copy of ``op`` (its ``weight`` rows are its output channels) with ``bn`` folded in."""
    folded = copy.deepcopy(op)
    if bn is not None:
        weight, bias = fuse_bn(op.weight.detach(), op.bias, bn, index)
        folded.weight = nn.Parameter(weight, requires_grad=False)
        folded.bias = nn.Parameter(bias, requires_grad=False)
    return folded


@register_fold_rule(nn.Conv2d, DeformConv2d)
def _weight_rows(op: nn.Module, bn: nn.BatchNorm2d | None) -> nn.Module:
    """Conv: ``W' = s W``, ``b' = s b + t``. DeformConv: the same on the sampled kernel (its
    offsets come from the input and do not change)."""
    return _fold_into_weight(op, bn)


@register_fold_rule(GroupConv2d)
def _group_conv(op: nn.Module, bn: nn.BatchNorm2d | None) -> nn.Module:
    """BN channel ``k`` normalises conv output ``perm[k]`` (after the shuffle)."""
    folded = copy.deepcopy(op)
    index = None
    if isinstance(op.shuffle, ChannelShuffle):
        index = torch.argsort(op.shuffle.permutation(op.out_channels))
    folded.conv = _fold_into_weight(op.conv, bn, index)
    return folded


@register_fold_rule(HetConv2d)
def _het_conv(op: nn.Module, bn: nn.BatchNorm2d | None) -> nn.Module:
    return FoldedHetConv2d(op, bn)


@register_fold_rule(MixConv2d, MixedGroupConv)
def _mixed(op: nn.Module, bn: nn.BatchNorm2d | None) -> nn.Module:
    """Group ``t``'s outputs are a contiguous slice of the concatenation."""
    folded = copy.deepcopy(op)
    start = 0
    for t, conv in enumerate(op.convs):
        index = torch.arange(start, start + conv.out_channels)
        folded.convs[t] = _fold_into_weight(conv, bn, index)
        start += conv.out_channels
    return folded


@register_fold_rule(CompConv2d)
def _comp_conv(op: nn.Module, bn: nn.BatchNorm2d | None) -> nn.Module:
    """Depth 0 is a plain conv. Otherwise some output channels are copies of the input, which
    no filter can absorb a scale for: the BN becomes the op's output scale and bias."""
    folded = copy.deepcopy(op)
    if bn is None:
        return folded
    if op.plan is None:
        folded.primary = _fold_into_weight(op.primary, bn)
        return folded
    ones = torch.ones(op.out_channels, 1, 1, 1, device=bn.running_mean.device)
    bias = op.bias.detach() if op.bias is not None else None
    scale, shift = fuse_bn(ones, bias, bn)
    folded.scale = scale.view(-1)
    folded.bias = nn.Parameter(shift, requires_grad=False)
    return folded
