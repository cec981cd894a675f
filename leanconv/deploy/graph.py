"""Which module feeds which: a ``torch.fx`` trace with leanconv's operators as leaves.

Folding needs the data flow (a BatchNorm folds into the conv whose output it alone reads; a
shuffle folds into the dense conv that alone reads it). ``torch.fx.symbolic_trace`` gives it
for any model without data-dependent control flow, including torchvision's and timm's; the
operators stay leaves so that their internals are folded by their own rules. A model that
does not trace falls back to :func:`sequential_pairs`.
"""

from __future__ import annotations

import itertools
from collections import Counter

from torch import fx, nn

from leanconv.deploy.batchnorm import FOLD_RULES, can_fold, fold_rule
from leanconv.deploy.folded_hetconv import FoldedHetConv2d
from leanconv.ops.channel_shuffle import ChannelShuffle


class _LeafTracer(fx.Tracer):
    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        leaf = isinstance(module, (*FOLD_RULES, FoldedHetConv2d, ChannelShuffle))
        return leaf or super().is_leaf_module(module, qualified_name)


def trace(model: nn.Module) -> fx.Graph | str:
    """The model's fx graph, or why it could not be traced."""
    try:
        return _LeafTracer().trace(model)
    except Exception as error:  # arbitrary user code: any failure means "not traceable"
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def module_uses(graph: fx.Graph) -> Counter[str]:
    """How many graph nodes call each module (a module called twice must not be rewritten)."""
    return Counter(node.target for node in graph.nodes if node.op == "call_module")


def graph_pairs(model: nn.Module, graph: fx.Graph) -> list[tuple[str, str]]:
    """``(producer, bn)`` module names where the BatchNorm reads the producer's output and
    nothing else does, both called once, and the producer has a fold rule."""
    modules, uses = dict(model.named_modules()), module_uses(graph)
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not can_fold(modules[node.target]):
            continue
        source = node.args[0] if node.args else None
        if (isinstance(source, fx.Node) and source.op == "call_module"
                and len(source.users) == 1 and uses[node.target] == uses[source.target] == 1
                and fold_rule(modules[source.target]) is not None):
            pairs.append((source.target, node.target))
    return pairs


def sequential_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(producer, bn)`` adjacent children of an ``nn.Sequential`` (whose output the next
    child alone reads), for models that do not trace."""
    pairs = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name, first), (bn_name, second) in itertools.pairwise(children):
            if can_fold(second) and fold_rule(first) is not None:
                join = f"{prefix}." if prefix else ""
                pairs.append((join + name, join + bn_name))
    return pairs
