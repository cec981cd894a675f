"""Folding channel shuffles into the layers that read them (ShuffleNet v1/v2).

A shuffle is a fixed permutation ``y[:, k] = x[:, perm[k]]``: no arithmetic, but a full pass
over memory. Where every path from it ends in a dense consumer (a ``groups=1`` conv, or a
linear layer after global pooling), the permutation can move into the consumer's input
columns, ``W'[:, perm[k]] = W[:, k]``, and the shuffle disappears. Per-channel layers on the
way (BatchNorm, activations, pooling, depthwise convs) commute with it once their own
parameters are permuted the same way. A grouped consumer cannot absorb it (its groups would
mix), nor can a channel split (ShuffleNet v2's ``chunk``): those shuffles stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from leanconv.deploy.graph import module_uses
from leanconv.ops.channel_shuffle import ChannelShuffle
from leanconv.ops.comp_conv import CompConv2d
from leanconv.ops.group_conv import GroupConv2d

_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid,
                        nn.Tanh, nn.GELU, nn.LeakyReLU, nn.ELU, nn.Identity, nn.Dropout,
                        nn.MaxPool2d, nn.AvgPool2d)
_ELEMENTWISE_FUNCTIONS = (F.relu, torch.relu, F.relu6, F.hardswish, F.silu, torch.sigmoid,
                          F.gelu, torch.tanh, F.dropout)
_ELEMENTWISE_METHODS = ("relu", "sigmoid", "tanh")
_GLOBAL_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass
class ShuffleFold:
    """One foldable shuffle: its source, the layers to permute and the consumers' names."""

    source: str
    per_channel: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    channels: int | None = None


def _source_channels(module: nn.Module) -> int | None:
    """Channel count of a shuffle source, when the module itself knows it."""
    return getattr(module, "out_channels", None)


def _shuffle_of(module: nn.Module) -> ChannelShuffle | None:
    if isinstance(module, ChannelShuffle):
        return module if module.groups > 1 else None
    if isinstance(module, (GroupConv2d, CompConv2d)):
        shuffle = getattr(module, "shuffle", None)
        if isinstance(shuffle, ChannelShuffle) and shuffle.groups > 1:
            return shuffle
    return None


def _is_global_pool(module: nn.Module) -> bool:
    size = getattr(module, "output_size", None)
    return isinstance(module, _GLOBAL_POOLS) and size in (1, (1, 1))


def _is_flatten(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], nn.Flatten)
    return ((node.op == "call_function" and node.target is torch.flatten)
            or (node.op == "call_method" and node.target == "flatten"))


def _plan(node: fx.Node, modules: dict[str, nn.Module], uses: dict[str, int]) -> ShuffleFold | None:
    """Follow every use of the shuffled tensor to dense consumers; None if any path fails."""
    plan = ShuffleFold(node.target, channels=_source_channels(modules[node.target]))
    frontier, seen = [(node, False)], set()
    while frontier:
        current, pooled = frontier.pop()
        for user in current.users:
            if user in seen or user.args[:1] != (current,) or current in user.args[1:]:
                return None
            seen.add(user)
            if _is_flatten(user, modules):
                if not pooled:
                    return None
                frontier.append((user, True))
                continue
            if (user.op == "call_function" and user.target in _ELEMENTWISE_FUNCTIONS) or (
                    user.op == "call_method" and user.target in _ELEMENTWISE_METHODS):
                frontier.append((user, pooled))
                continue
            if user.op != "call_module" or uses[user.target] != 1:
                return None
            module = modules[user.target]
            channels = None
            if isinstance(module, nn.BatchNorm2d) and not pooled:
                plan.per_channel.append(user.target)
                channels = module.num_features
            elif isinstance(module, _ELEMENTWISE_MODULES) or _is_global_pool(module):
                frontier.append((user, pooled or _is_global_pool(module)))
                continue
            elif isinstance(module, nn.Conv2d) and not pooled and module.groups == 1:
                plan.consumers.append(user.target)
                channels = module.in_channels
            elif (isinstance(module, nn.Conv2d) and not pooled
                  and module.groups == module.in_channels == module.out_channels):
                plan.per_channel.append(user.target)
                channels = module.in_channels
            elif isinstance(module, nn.Linear) and pooled:
                plan.consumers.append(user.target)
                channels = module.in_features
            else:
                return None
            if plan.channels not in (None, channels):
                return None
            plan.channels = channels
            if user.target in plan.per_channel:
                frontier.append((user, pooled))
    return plan if plan.consumers else None


def drop_trivial_shuffles(model: nn.Module) -> list[str]:
    """Replace ``ChannelShuffle(groups=1)`` (the identity permutation, still a copy) by
    ``nn.Identity``; return their names."""
    names = [name for name, module in model.named_modules()
             if isinstance(module, ChannelShuffle) and module.groups == 1]
    for name in names:
        model.set_submodule(name, nn.Identity())
    return names


def plan_shuffle_folds(model: nn.Module, graph: fx.Graph) -> list[ShuffleFold]:
    """Every shuffle in ``graph`` that can be folded away (shuffle sources called once)."""
    modules, uses = dict(model.named_modules()), module_uses(graph)
    plans = []
    for node in graph.nodes:
        if node.op == "call_module" and _shuffle_of(modules[node.target]) is not None:
            plan = _plan(node, modules, uses) if uses[node.target] == 1 else None
            if plan is not None:
                plans.append(plan)
    return plans


@torch.no_grad()
def apply_shuffle_fold(model: nn.Module, plan: ShuffleFold) -> None:
    """Permute the planned layers of ``model`` in place and remove the shuffle."""
    source = model.get_submodule(plan.source)
    perm = _shuffle_of(source).permutation(plan.channels)
    inverse = torch.argsort(perm)
    for name in plan.per_channel:
        layer = model.get_submodule(name)
        for tensor in (layer.weight, layer.bias, getattr(layer, "running_mean", None),
                       getattr(layer, "running_var", None)):
            if tensor is not None:
                tensor.copy_(tensor[inverse.to(tensor.device)])
    for name in plan.consumers:
        layer = model.get_submodule(name)
        layer.weight.copy_(layer.weight[:, inverse.to(layer.weight.device)])
    if isinstance(source, ChannelShuffle):
        model.set_submodule(plan.source, nn.Identity())
        return
    source.shuffle = nn.Identity()
    if isinstance(source, CompConv2d):  # its bias and scale are in shuffled (output) order
        for name in ("bias", "scale"):
            tensor = getattr(source, name)
            if tensor is not None:
                tensor.copy_(tensor[inverse.to(tensor.device)])
