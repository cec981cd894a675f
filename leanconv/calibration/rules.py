"""The fit-rule table: how :func:`leanconv.calibration.fit_converted` fits each operator.

A rule is ``fit(layer, problem) -> method`` (:class:`FitProblem` holds the layer's input in
the converted network and the original layer's outputs at sampled positions); it sets the
layer's parameters in place and returns the method name shown in the conversion report.
Rules are looked up by the layer's class or its nearest registered base class
(:meth:`leanconv.registry.Registry.for_type`), like the weight-inheritance rules;
``nn.Module`` itself holds the gradient reconstruction, the fallback for everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from leanconv.registry import Registry


@dataclass
class FitProblem:
    """What a fit rule gets for one layer.

    ``inputs``: the layer's input ``X`` (B, M, H, W) in the converted network (earlier
    layers already fitted); ``positions``: flat indices into the ``(B, H_out, W_out)`` output
    grid (``output_shape`` is ``(B, N, H_out, W_out)``); ``target``: ``(S, N)``, the original
    layer's outputs there; ``target_maps``: the full ``(B, N, H_out, W_out)`` outputs, only
    for rules registered with ``full_maps``; ``ridge``: the relative ridge ``lam = ridge *
    mean(diag(G))``; ``batch_size``: images per pass where a rule runs the layer on all of
    them; ``seed``: for anything random the rule does."""

    name: str
    inputs: torch.Tensor
    positions: torch.Tensor
    output_shape: tuple[int, int, int, int]
    target: torch.Tensor
    target_maps: torch.Tensor | None
    ridge: float
    batch_size: int
    seed: int


FitFunction = Callable[[nn.Module, FitProblem], str]


@dataclass(frozen=True)
class FitRule:
    """A registered rule: ``fit`` and whether it needs the full target maps for a layer."""

    fit: FitFunction
    full_maps: Callable[[nn.Module], bool]


FIT_RULES: Registry[FitRule] = Registry("fit rule")


def register_fit_rule(*types: type[nn.Module], full_maps: bool | Callable[[nn.Module], bool]
                      = False) -> Callable[[FitFunction], FitFunction]:
    """Decorator: ``fit(layer, problem) -> method`` for modules of ``types`` (and their
    subclasses without a rule of their own). ``full_maps`` (a bool or a function of the
    layer): the rule needs ``problem.target_maps``."""
    needs = full_maps if callable(full_maps) else (lambda _layer: bool(full_maps))

    def decorate(fit: FitFunction) -> FitFunction:
        rule = FitRule(fit, needs)
        for cls in types:
            FIT_RULES.add(cls, rule, origin=fit)
        return fit

    return decorate


def fit_rule_for(layer: nn.Module) -> FitRule:
    """The rule of ``layer``'s class (the reconstruction fallback when none is closer)."""
    rule = FIT_RULES.for_type(layer)
    if rule is None:  # only if the fallback was removed from the table
        raise ValueError(f"no fit rule for {type(layer).__name__}; register one with "
                         f"leanconv.calibration.register_fit_rule")
    return rule
