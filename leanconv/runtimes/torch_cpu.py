"""PyTorch eager on the CPU, as deployed today: the model folded (:func:`leanconv.fold`:
BatchNorm into the convs, each operator in its fastest measured form) in ``fp32``, or run
under ``torch.autocast`` in ``bf16`` where the CPU has native bf16 (AVX-512 BF16 or AMX;
elsewhere bf16 is emulated and slower than fp32). Per layer, bf16 layers run in autocast
islands of an fp32 model. Each layer takes the exact form measured fastest in its precision
(:mod:`leanconv.runtimes.forms`; bf16 favours one dense conv over HetConv's two kernels; in
channels_last, fold measures in fp32). The artifact is the PyTorch model itself
(``model.pt``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from leanconv.cost.latency import torch_threads
from leanconv.deploy.fold import fold
from leanconv.runtimes.base import RUNTIMES, Artifact, Runtime, check_layers
from leanconv.runtimes.forms import runtime_form_timer


class Bfloat16Island(nn.Module):
    """``module`` run in bf16 autocast inside an fp32 model (its output back in fp32)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.module(x).float()


class TorchArtifact(Artifact):
    """A folded PyTorch model run with ``threads`` threads, in fp32 or bf16 autocast."""

    def __init__(self, model: nn.Module, precision: str, input_shape: tuple[int, ...],
                 threads: int, channels_last: bool) -> None:
        super().__init__("torch", precision, input_shape, threads)
        self.model, self.channels_last = model, channels_last

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        whole = self.precision == "bf16" and self.layers is None
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                    enabled=whole):
            return self.model(x)

    def runner(self, x: torch.Tensor) -> Callable[[], object]:
        self.check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return lambda: self._run(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        with torch_threads(self.threads):
            return self._run(x).float()


class TorchRuntime(Runtime):
    """PyTorch eager (module docstring)."""

    name = "torch"
    precisions = ("fp32", "bf16")
    lowered = ("bf16",)

    def unsupported(self, precision: str) -> str | None:
        if precision == "bf16" and not (torch.cpu._is_avx512_bf16_supported()
                                        or torch.cpu._is_amx_tile_supported()):
            return ("this CPU has no native bf16 (neither AVX-512 BF16 nor AMX); PyTorch "
                    "would emulate it, slower than fp32")
        return None

    def build(self, model: nn.Module, input_shape: tuple[int, ...], precision: str, *,
              threads: int, calibration: torch.Tensor | None = None,
              layers: Sequence[str] | None = None, rest: str | None = None,
              channels_last: bool = False, measure_forms: bool = True) -> Artifact:
        check_layers("torch", self, precision, layers, rest)
        forms: dict[str, Any] = {"hetconv": "fused", "mixconv": "split",
                                 "groupconv": "grouped"}
        if measure_forms:  # in channels_last, fold times the forms itself, in fp32
            forms = {"timer": None if channels_last else runtime_form_timer(
                self, precision, threads, layers=layers, rest=rest)}
        folded, _ = fold(model, tuple(input_shape), channels_last=channels_last,
                         threads=threads, **forms)
        if channels_last:
            folded = folded.to(memory_format=torch.channels_last)
        for name in layers or ():
            parent_name, _, child = name.rpartition(".")
            parent = folded.get_submodule(parent_name)
            setattr(parent, child, Bfloat16Island(parent.get_submodule(child)))
        artifact = TorchArtifact(folded.eval(), precision, input_shape, threads, channels_last)
        artifact.layers = None if layers is None else tuple(layers)
        return artifact


RUNTIMES.add("torch", TorchRuntime())
