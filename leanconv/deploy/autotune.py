"""Per-layer choice of inference form, measured: the ``'auto'`` of :func:`leanconv.fold`.

Some folded layers have more than one exact form, and which one is faster depends on the
shape, the layout, the thread count and the backend:

* a :class:`FoldedHetConv2d` with a 1x1 part: ``fused`` (itself) or ``dense`` (one KxK conv);
* a :class:`MixConv2d` with several groups: ``split`` (itself), ``single`` (one zero-padded
  depthwise conv) and, under ``'auto'``, every merge of adjacent groups in between
  (``merged 2+2``);
* MixNet's :class:`MixedGroupConv` with equal groups: ``split`` or ``single`` (one
  ``groups=g`` conv).

A fixed choice (``'fused'``, ``'dense'``, ``'split'``, ``'single'``) is applied as asked. Under
``'auto'`` each layer's candidates are timed on the input that layer receives from the model's
``input_shape`` input (found by one forward pass with pre-hooks), in ``ROUNDS`` interleaved
rounds of at least ``MIN_RUN_TIME`` seconds each, and the lowest median wins; without an
``input_shape`` the first form (``fused`` / ``split``) is kept unmeasured. Every layer's choice
and the candidates' times come back as report rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from leanconv.cost.latency import make_inputs, measure, median_iqr
from leanconv.deploy.folded_hetconv import FoldedHetConv2d
from leanconv.deploy.single_kernel import compositions, merged_mixconv, single_kernel_group_conv
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv

HETCONV_FORMS = ("auto", "fused", "dense")
MIXCONV_FORMS = ("auto", "split", "single")
ROUNDS = 3
MIN_RUN_TIME = 0.02


def layer_input_shapes(model: nn.Module, names: list[str], input_shape: tuple[int, ...],
                       channels_last: bool) -> dict[str, tuple[int, ...]]:
    """The input shape each named module receives on an ``input_shape`` input (in the order
    the forward first calls them; a module the forward does not call is absent)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            shapes.setdefault(name, tuple(args[0].shape))

        return hook

    hooks = [model.get_submodule(name).register_forward_pre_hook(record(name))
             for name in names]
    try:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        dtype = parameter.dtype if parameter is not None else torch.float32
        with torch.no_grad():
            model(make_inputs([input_shape], device, dtype, channels_last)[0])
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def _fastest(candidates: dict[str, nn.Module], shape: tuple[int, ...], like: torch.Tensor,
             channels_last: bool, threads: int) -> tuple[str, dict[str, float]]:
    """The candidate with the lowest median time (ms), measured in interleaved rounds."""
    x = make_inputs([shape], like.device, like.dtype, channels_last)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(ROUNDS):
        for name, module in candidates.items():
            times[name].append(measure(module, x, threads, MIN_RUN_TIME)[0])
    medians = {name: median_iqr(values)[0] for name, values in times.items()}
    return min(medians, key=medians.get), medians


def _alternatives(module: nn.Module, hetconv: str, mixconv: str) -> tuple[str, dict] | None:
    """``(choice, {form: module})`` for a module with a choice of inference form."""
    if isinstance(module, FoldedHetConv2d) and module.weight_1x1 is not None:
        return hetconv, {"fused": module, "dense": module.to_dense()}
    if isinstance(module, MixConv2d) and len(module.convs) > 1:
        forms: dict[str, nn.Module] = {"split": module}
        for parts in compositions(len(module.convs))[1:]:  # the first is the split itself
            name = "single" if len(parts) == 1 else "merged " + "+".join(map(str, parts))
            if mixconv == "auto" or name == "single":
                forms[name] = merged_mixconv(module, parts)
        return mixconv, forms
    if isinstance(module, MixedGroupConv):
        single = single_kernel_group_conv(module)
        if single is not None:
            return mixconv, {"split": module, "single": single}
    return None


def choose_forms(model: nn.Module, hetconv: str, mixconv: str,
                 input_shape: tuple[int, ...] | None, channels_last: bool,
                 threads: int) -> list[tuple[str, str, str]]:
    """Put each layer of ``model`` with a choice into the form ``hetconv`` / ``mixconv`` (one
    of ``HETCONV_FORMS`` / ``MIXCONV_FORMS``) asks for, measuring under ``'auto'`` (module
    docstring), in place; one ``(name, action, detail)`` report row per layer.

    Called by :func:`leanconv.fold`, which has validated the arguments.
    """
    choices = {name: found for name, module in model.named_modules()
               if (found := _alternatives(module, hetconv, mixconv)) is not None}
    measured = [name for name, (choice, _) in choices.items() if choice == "auto"]
    shapes = (layer_input_shapes(model, measured, input_shape, channels_last)
              if measured and input_shape is not None else {})
    rows = []
    for name, (choice, forms) in choices.items():
        split_form = next(iter(forms))
        detail = ""
        if choice == "auto" and name in shapes:
            like = next(forms[split_form].parameters())
            choice, times = _fastest(forms, shapes[name], like, channels_last, threads)
            detail = ", ".join(f"{form} {ms:.3f} ms" for form, ms in times.items())
        elif choice == "auto":
            choice, detail = split_form, "not measured (no input_shape)"
        if choice != split_form:
            model.set_submodule(name, forms[choice])
        rows.append((name, f"{type(forms[split_form]).__name__.lower()}: {choice}", detail))
    return rows
