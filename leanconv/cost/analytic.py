"""Analytic MACs: each leanconv operator's closed-form cost from its seed.

For ordinary layers the analytic count is what the kernels execute. An operator whose kernels
do work its formula does not count registers the formula here, as a function of the module
and its output shape (N, C, H, W); the profiler replaces the executed MACs of that module's
subtree by it. HetConv is the case in point: its 1x1 kernels run as one 1x1 conv with zero
diagonal blocks, ``N * M / P`` MACs per pixel more than ``N (M K^2 / P + M - M / P)``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from leanconv.ops.comp_conv import CompConv2d
from leanconv.ops.deform_conv import DeformConv2d
from leanconv.ops.het_conv import HetConv2d

AnalyticFormula = Callable[[nn.Module, tuple[int, ...]], int]

ANALYTIC_MACS: dict[type[nn.Module], AnalyticFormula] = {}


def register_analytic_macs(*types: type[nn.Module]) -> Callable[[AnalyticFormula],
                                                                 AnalyticFormula]:
    """Decorator: ``formula(module, output_shape) -> MACs`` for modules of ``types``."""

    def register(formula: AnalyticFormula) -> AnalyticFormula:
        for kind in types:
            ANALYTIC_MACS[kind] = formula
        return formula

    return register


@register_analytic_macs(HetConv2d, CompConv2d, DeformConv2d)
def per_output_pixel_macs(module: nn.Module, output_shape: tuple[int, ...]) -> int:
    """``macs_per_pixel()`` (the seed's formula, see each operator) times N * H * W."""
    batch, _, height, width = output_shape
    return module.macs_per_pixel() * batch * height * width


def analytic_macs(module: nn.Module, output_shape: tuple[int, ...]) -> int | None:
    """The registered analytic MACs of ``module``, or None when it has no formula."""
    for kind in type(module).__mro__:
        if kind in ANALYTIC_MACS:
            return ANALYTIC_MACS[kind](module, output_shape)
    return None
