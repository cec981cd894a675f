"""Sensitivity: what converting one layer, alone, costs the model on the user's images.

For layer ``i`` and candidate ``j``, only that layer is converted (weights inherited by
:func:`leanconv.convert`) and fitted to the original layer's outputs on the calibration
images (:func:`leanconv.calibration.fit_converted`, the least-squares fit of the data-aware
inheritance); the sensitivity is the mean KL divergence of the converted model's predictions
from the original's on held-out images (images the fit did not see):

    s_ij = 1/N sum_n KL( softmax(f(x_n)) || softmax(f_ij(x_n)) )

``keep`` costs 0. A choice in a lower precision (``dwsep@int8``) is the fitted candidate
with the precision's rounding simulated on that layer
(:func:`leanconv.runtimes.simulate.simulated`: int8 weights per channel and input per
tensor over its range on the calibration images, or bf16).

Each fit forwards the calibration images only up to the layer (twice) and the held-out
images once, so a candidate costs about two forwards; the BatchNorm
re-estimation and classifier refit of a full conversion are left out (they repair the error
of many replaced layers together, and cost two full forwards more). Summing ``s_ij`` over a
plan's layers is the additive loss model of per-layer searches such as NetAdapt (T.-J. Yang
et al., ECCV 2018, arXiv:1804.03230); ``benchmarks/shrink_vs_baselines.py`` reports how well
it ranks layers by their real accuracy drop (Spearman correlation).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from leanconv.calibration import fit_converted
from leanconv.converter import KEEP, convert
from leanconv.runtimes.simulate import simulated
from leanconv.search.candidates import Layer
from leanconv.search.deployment import split_choice

FIT_IMAGES = 256  # calibration images each single-layer fit uses (the first ones)


@torch.no_grad()
def _log_probs(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Log-probabilities of ``model`` on ``images``, run in channels_last (oneDNN's convs
    are faster on it; the result does not depend on it)."""
    model = model.eval().to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    return torch.cat([F.log_softmax(model(chunk).float(), dim=1)
                      for chunk in images.split(batch_size)])


def kl_divergence(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Mean KL(p || q) over rows of log-probabilities ``reference`` (p) and ``other`` (q)."""
    return F.kl_div(other, reference, reduction="batchmean", log_target=True).item()


@torch.no_grad()
def _in_precision(model: nn.Module, name: str, precision: str, images: torch.Tensor
                  ) -> nn.Module:
    """A copy of ``model`` whose layer ``name`` runs in ``precision``, simulated
    (:func:`leanconv.runtimes.simulate.simulated`, its input range from ``images``)."""
    layer = model.get_submodule(name)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach()))
    try:
        model.eval()(images)
    finally:
        handle.remove()
    copied = copy.deepcopy(model)
    parent_name, _, child = name.rpartition(".")
    setattr(copied.get_submodule(parent_name), child,
            simulated(layer, precision, torch.cat(seen)))
    return copied


def measure_sensitivity(model: nn.Module, layers: Sequence[Layer], calibration: torch.Tensor,
                        held_out: torch.Tensor, *, batch_size: int = 256,
                        progress: Callable[[str], None] | None = None
                        ) -> tuple[dict[str, dict[str, float]], float]:
    """``s_ij`` of every layer and candidate (module docstring), and the seconds it took.

    ``calibration`` (the first :data:`FIT_IMAGES` are used) and ``held_out``: disjoint
    images (N, C, H, W) normalised as the model expects. ``progress``, when given, is called
    with one line per layer."""
    start = time.perf_counter()
    reference = _log_probs(copy.deepcopy(model), held_out, batch_size)  # model is kept as is
    result: dict[str, dict[str, float]] = {}
    for i, layer in enumerate(layers):
        row = {KEEP: 0.0}
        fitted = {KEEP: model}
        for choice in sorted(layer.specs, key=lambda c: split_choice(c)[1] is not None):
            if choice == KEEP:
                continue
            spec, precision = split_choice(choice)
            if spec not in fitted:
                fitted[spec], _ = convert(model, {layer.name: spec})
                fit_converted(model, fitted[spec], [layer.name], calibration[:FIT_IMAGES])
            converted = fitted[spec]
            if precision is not None:
                converted = _in_precision(converted, layer.name, precision,
                                          calibration[:FIT_IMAGES])
            row[choice] = max(0.0, kl_divergence(reference,
                                                 _log_probs(converted, held_out, batch_size)))
        result[layer.name] = row
        if progress is not None:
            worst = max(row, key=row.get)
            progress(f"sensitivity {i + 1}/{len(layers)} {layer.name}: most sensitive to "
                     f"{worst} (KL {row[worst]:.4f})")
    return result, time.perf_counter() - start
