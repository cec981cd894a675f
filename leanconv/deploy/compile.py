"""``compile_model(model, input_shape)``: ``torch.compile`` with inference freezing, kept only
where it measures faster.

Freezing (``options={"freezing": True}``) lets Inductor treat the weights as constants: it
folds them into pre-packed kernel layouts (oneDNN on CPU) and drops what only training needs.
It applies to calls under ``torch.no_grad()`` / ``torch.inference_mode()``. Compilation costs
tens of seconds per model on a 2-core CPU, and on some models and batch sizes the compiled
graph is not faster than the folded eager one, so the choice is measured, side by side in
interleaved rounds, on ``input_shape`` with the given thread count and layout.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn

from leanconv._validate import check_input_shape, check_int, check_module, check_threads
from leanconv.cost.latency import make_inputs, measure_side_by_side, torch_threads
from leanconv.deploy.fold import fold


@dataclass(frozen=True)
class CompileReport:
    """Median latencies (ms) on the measured input, what was chosen and the compile time."""

    eager_ms: float
    folded_ms: float
    compiled_ms: float
    chosen: str
    compile_seconds: float

    def summary(self) -> str:
        return (f"eager {self.eager_ms:.3f} ms, folded {self.folded_ms:.3f} ms, compiled "
                f"{self.compiled_ms:.3f} ms (compiled in {self.compile_seconds:.1f} s): "
                f"using {self.chosen}")


def compile_frozen(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, float]:
    """``torch.compile(model, freezing)``, compiled by a first call on ``x``, and the seconds
    that call took."""
    compiled = torch.compile(model, options={"freezing": True})
    start = time.perf_counter()
    with torch.inference_mode():
        compiled(x)
    return compiled, time.perf_counter() - start


def compile_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    channels_last: bool = False,
    threads: int | None = None,
    rounds: int = 3,
) -> tuple[nn.Module, CompileReport]:
    """The faster of ``fold(model)`` and ``torch.compile(fold(model), freezing)`` on
    ``input_shape``, and the :class:`CompileReport` of the measurements behind the choice.
    Call the model under ``torch.inference_mode()``.
    """
    check_module("compile_model", "model", model)
    shape = check_input_shape("compile_model", input_shape)
    check_threads("compile_model", threads)
    check_int("compile_model", "rounds", rounds)
    threads = threads or torch.get_num_threads()
    with torch_threads(threads):
        folded, _ = fold(model, shape, channels_last=channels_last, threads=threads)
        if channels_last:
            folded = folded.to(memory_format=torch.channels_last)
        parameter = next(folded.parameters())
        x = make_inputs([shape], parameter.device, parameter.dtype, channels_last)[0]
        compiled, seconds = compile_frozen(folded, x)
        times = measure_side_by_side(
            {"eager": copy.deepcopy(model), "folded": folded, "compiled": compiled}, shape,
            device=parameter.device.type, dtype=parameter.dtype, channels_last=channels_last,
            threads=threads, rounds=rounds)
    chosen = "compiled" if times["compiled"][0] < times["folded"][0] else "folded"
    report = CompileReport(times["eager"][0], times["folded"][0], times["compiled"][0], chosen,
                           seconds)
    return (compiled if chosen == "compiled" else folded), report
