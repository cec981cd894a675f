"""Per-layer choice of inference form, measured: the ``'auto'`` of :func:`leanconv.fold`.

Some folded layers have more than one exact form, and which one is faster depends on the
shape, the layout, the thread count and the backend:

* a :class:`FoldedHetConv2d` with a 1x1 part: ``fused`` (itself) or ``dense`` (one KxK conv);
* a :class:`MixConv2d` with several groups: ``split`` (itself), ``single`` (one zero-padded
  depthwise conv) and, under ``'auto'``, every merge of adjacent groups in between
  (``merged 2+2``);
* MixNet's :class:`MixedGroupConv` with equal groups: ``split`` or ``single`` (one
  ``groups=g`` conv);
* a :class:`GroupConv2d` (with or without its shuffle): ``grouped`` (itself) or ``dense``
  (one conv whose weight is block-diagonal, rows permuted by the shuffle: ``g`` times the
  MACs, no shuffle pass, and the dense kernels a runtime may run far better than its grouped
  ones).

A fixed choice (``'fused'``, ``'dense'``, ``'split'``, ``'single'``, ``'grouped'``) is applied
as asked. Under ``'auto'`` each layer's candidates are timed on the input that layer receives
from the model's ``input_shape`` input (found by one forward pass with pre-hooks) and the
lowest median wins; without an ``input_shape`` the first form (``fused`` / ``split`` /
``grouped``) is kept unmeasured. The timer is PyTorch's by default (:func:`torch_form_timer`:
``ROUNDS`` interleaved rounds of at least ``MIN_RUN_TIME`` seconds each); a runtime passes its
own (:mod:`leanconv.runtimes.forms`), so that each layer is exported in the form that runtime
runs fastest. Every layer's choice and the candidates' times come back as report rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from leanconv.cost.latency import make_inputs, measure, median_iqr
from leanconv.deploy.folded_hetconv import FoldedHetConv2d
from leanconv.deploy.single_kernel import compositions, merged_mixconv, single_kernel_group_conv
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv

HETCONV_FORMS = ("auto", "fused", "dense")
MIXCONV_FORMS = ("auto", "split", "single")
GROUPCONV_FORMS = ("auto", "grouped", "dense")
ROUNDS = 3
MIN_RUN_TIME = 0.02

# (layer name, {form: module}, the layer's input shape) -> {form: median ms}
FormTimer = Callable[[str, Mapping[str, nn.Module], tuple[int, ...]], dict[str, float]]


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


def torch_form_timer(channels_last: bool, threads: int) -> FormTimer:
    """The :data:`FormTimer` of PyTorch eager: the forms timed in ``ROUNDS`` interleaved
    rounds of at least ``MIN_RUN_TIME`` seconds each, in the memory format and threads
    given; their medians (ms)."""

    def time_forms(name: str, forms: Mapping[str, nn.Module], shape: tuple[int, ...]
                   ) -> dict[str, float]:
        like = next(next(iter(forms.values())).parameters())
        x = make_inputs([shape], like.device, like.dtype, channels_last)
        times: dict[str, list[float]] = {form: [] for form in forms}
        for _ in range(ROUNDS):
            for form, module in forms.items():
                times[form].append(measure(module, x, threads, MIN_RUN_TIME)[0])
        return {form: median_iqr(values)[0] for form, values in times.items()}

    return time_forms


def exact_forms(module: nn.Module, hetconv: str = "auto", mixconv: str = "auto",
                groupconv: str = "auto") -> tuple[str, dict[str, nn.Module]] | None:
    """``(choice, {form: module})`` for a folded module with more than one exact inference
    form (its own form first; ``choice``: the argument of its kind), else None."""
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
    if isinstance(module, GroupConv2d) and module.groups > 1:
        return groupconv, {"grouped": module, "dense": module.to_dense()}
    return None


def choose_forms(model: nn.Module, hetconv: str, mixconv: str, groupconv: str,
                 input_shape: tuple[int, ...] | None, channels_last: bool, threads: int,
                 timer: FormTimer | None = None) -> list[tuple[str, str, str]]:
    """Put each layer of ``model`` with a choice into the form ``hetconv`` / ``mixconv`` /
    ``groupconv`` (one of ``HETCONV_FORMS`` / ``MIXCONV_FORMS`` / ``GROUPCONV_FORMS``) asks
    for, measuring under ``'auto'`` with ``timer`` (default :func:`torch_form_timer`; module
    docstring), in place; one ``(name, action, detail)`` report row per layer.

    Called by :func:`leanconv.fold`, which has validated the arguments.
    """
    choices = {name: found for name, module in model.named_modules()
               if (found := exact_forms(module, hetconv, mixconv, groupconv)) is not None}
    measured = [name for name, (choice, _) in choices.items() if choice == "auto"]
    shapes = (layer_input_shapes(model, measured, input_shape, channels_last)
              if measured and input_shape is not None else {})
    time_forms = timer or torch_form_timer(channels_last, threads)
    rows = []
    for name, (choice, forms) in choices.items():
        split_form = next(iter(forms))
        detail = ""
        if choice == "auto" and name in shapes:
            times = time_forms(name, forms, shapes[name])
            choice = min(times, key=times.get)
            detail = ", ".join(f"{form} {ms:.3f} ms" for form, ms in times.items())
        elif choice == "auto":
            choice, detail = split_form, "not measured (no input_shape)"
        if choice != split_form:
            model.set_submodule(name, forms[choice])
        rows.append((name, f"{type(forms[split_form]).__name__.lower()}: {choice}", detail))
    return rows
