"""Export forms measured in the runtime: which exact form of a layer (HetConv fused or as one
dense conv, a MixConv split or as one kernel, a group conv grouped or as one block-diagonal
dense conv; :mod:`leanconv.deploy.autotune`) the runtime runs fastest, in the precision the
layer will run in.

PyTorch's timings do not carry over: onnxruntime's grouped int8 convs are a slow path, and
each runtime fuses differently. So each form is built alone in the runtime at the layer's
input shape (int8 calibrated on random images: the speed of int8 kernels does not depend on
the values), and the forms are timed in turns (:func:`leanconv.runtimes.timing.time_artifacts`).
A choice is remembered for the process by (runtime, precision, threads, layer signature), so
that the layer-table entry and every model built with that layer agree on the form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from leanconv.deploy.autotune import FormTimer
from leanconv.runtimes.base import Runtime
from leanconv.runtimes.timing import time_artifacts

ROUNDS = 3
MIN_RUN_TIME = 0.05
_TIMES: dict[tuple[object, ...], dict[str, float]] = {}  # the process's measured forms


def _signature(module: nn.Module, shape: tuple[int, ...]) -> tuple[object, ...]:
    """What a layer's form timings depend on: its type, description and tensor shapes, its
    input shape and (for the stride) its output shape."""
    tensors = tuple(tuple(t.shape) for t in (*module.parameters(), *module.buffers()))
    with torch.no_grad():
        output = tuple(module(torch.zeros(shape)).shape)
    return type(module).__name__, repr(module), tensors, shape, output


def runtime_form_timer(runtime: Runtime, precision: str, threads: int, *,
                       layers: Sequence[str] | None = None, rest: str | None = None
                       ) -> FormTimer:
    """The form timer of ``runtime`` for a model built in ``precision``; with per-layer
    precision, the layers ``layers`` are timed in ``precision`` and the others in ``rest``
    (:meth:`Runtime.build`'s arguments)."""
    lowered = set(layers or ())

    def time_forms(name: str, forms: Mapping[str, nn.Module], shape: tuple[int, ...]
                   ) -> dict[str, float]:
        chosen = precision if layers is None or name in lowered else (
            rest or runtime.precisions[0])
        first = next(iter(forms.values()))
        key = (runtime.name, chosen, threads, _signature(first, shape))
        if key not in _TIMES:
            images = torch.randn((max(8, shape[0]), *shape[1:]))
            built = {form: runtime.build(module, shape, chosen, threads=threads,
                                         calibration=images, measure_forms=False)
                     for form, module in forms.items()}
            timed = time_artifacts(built, torch.randn(shape), threads=threads, rounds=ROUNDS,
                                   min_run_time=MIN_RUN_TIME)
            _TIMES[key] = {form: timed[form][0] for form in forms}
        return dict(_TIMES[key])

    return time_forms
