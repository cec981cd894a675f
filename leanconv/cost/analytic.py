"""Analytic MACs: each leanconv operator's closed-form cost from its paper.

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
from leanconv.registry import Registry

AnalyticFormula = Callable[[nn.Module, tuple[int, ...]], int]

ANALYTIC_MACS: Registry[AnalyticFormula] = Registry("analytic MAC formula")


def register_analytic_macs(*types: type[nn.Module]) -> Callable[[AnalyticFormula],
                                                                 AnalyticFormula]:
    """Decorator: ``formula(module, output_shape) -> MACs`` for modules of ``types``."""
    return ANALYTIC_MACS.register(*types)


@register_analytic_macs(HetConv2d, CompConv2d, DeformConv2d)
def per_output_pixel_macs(module: nn.Module, output_shape: tuple[int, ...]) -> int:
    """``macs_per_pixel()`` (the paper's formula, see each operator) times N * H * W."""
    batch, _, height, width = output_shape
    return module.macs_per_pixel() * batch * height * width


def analytic_macs(module: nn.Module, output_shape: tuple[int, ...]) -> int | None:
    """The registered analytic MACs of ``module`` (its class's formula or its nearest
    registered base class's), or None when it has no formula."""
    formula = ANALYTIC_MACS.for_type(module)
    return None if formula is None else formula(module, output_shape)
