"""Where ``leanconv shrink`` measures: a runtime (:mod:`leanconv.runtimes`), the precision the
model runs in and at most one lower precision a layer may take instead, the threads and the
memory format. A choice for a layer is an operator spec, or ``spec@precision`` for that
operator in the lower precision (``dwsep@int8``); a plan maps layers to choices.

Every latency shrink uses comes from here: a latency-table entry (:meth:`Deployment.call`
on one layer), a plan against the original (:meth:`Deployment.speedups`, paired ratios of
the two timed in turns), and the deployed result (:meth:`Deployment.artifact`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from leanconv.deploy.latency import Speedup
from leanconv.runtimes import Artifact, check_precision, get_runtime, time_artifacts

SEPARATOR = "@"


def split_choice(choice: str) -> tuple[str, str | None]:
    """``(spec, lower precision)`` of a plan's choice (``None``: the model's precision)."""
    spec, _, precision = choice.partition(SEPARATOR)
    return spec, precision or None


def specs_of(plan: Mapping[str, str]) -> dict[str, str]:
    """``plan`` with each choice's operator spec alone (what :func:`leanconv.convert` takes)."""
    return {name: split_choice(choice)[0] for name, choice in plan.items()}


@dataclass(frozen=True)
class Deployment:
    """A runtime and its precisions (``precisions[0]``: the model's; ``precisions[1]``, when
    given: a lower one single layers may take), ``threads``, the memory format (PyTorch
    only) and the images int8 is calibrated on (``calibration``, N x C x H x W)."""

    runtime: str = "torch"
    precisions: tuple[str, ...] = ("fp32",)
    threads: int = 1
    channels_last: bool = False
    calibration: torch.Tensor | None = None

    def __post_init__(self) -> None:
        runtime = get_runtime("shrink", self.runtime)
        if not isinstance(self.precisions, tuple) or not 1 <= len(self.precisions) <= 2:
            raise ValueError(f"shrink: precision={list(self.precisions)!r} is invalid; give "
                             f"the model's precision and at most one lower precision for "
                             f"single layers, e.g. fp32 int8")
        for precision in self.precisions:
            check_precision("shrink", runtime, precision)
        if self.precisions[0] in runtime.lowered:
            raise ValueError(f"shrink: precision={self.precisions[0]!r} cannot be the "
                             f"model's in {self.runtime!r} when layers choose; give one of "
                             f"{[p for p in runtime.precisions if p not in runtime.lowered]} "
                             f"first")
        if len(self.precisions) == 2 and self.precisions[1] not in runtime.lowered:
            raise ValueError(f"shrink: precision={self.precisions[1]!r} cannot be chosen per "
                             f"layer in {self.runtime!r}; per layer: "
                             f"{', '.join(runtime.lowered)}")

    @property
    def lowered(self) -> str | None:
        """The precision single layers may take, or None."""
        return self.precisions[1] if len(self.precisions) == 2 else None

    def describe(self) -> str:
        per_layer = f", {self.lowered} per layer" if self.lowered else ""
        return f"{self.runtime} {self.precisions[0]}{per_layer}"

    def cache_key(self) -> dict[str, object]:
        """What a latency entry depends on besides the machine and the layer."""
        if self.runtime == "torch" and self.precisions == ("fp32",):
            return {}  # the entries measured before runtimes existed keep their key
        return {"runtime": self.runtime, "precisions": list(self.precisions),
                "versions": _versions(self.runtime)}

    def choices(self, specs: Sequence[str]) -> tuple[str, ...]:
        """``specs`` and, with a lower precision, each of them in it."""
        low = self.lowered
        return tuple(specs) + (tuple(f"{spec}{SEPARATOR}{low}" for spec in specs) if low
                               else ())

    def artifact(self, model: nn.Module, input_shape: tuple[int, ...],
                 plan: Mapping[str, str] | None = None, *,
                 calibration: torch.Tensor | None = None) -> Artifact:
        """``model`` built in the runtime: the layers whose choice in ``plan`` names the
        lower precision run in it (int8 calibrated on ``calibration``, default
        :attr:`calibration`), the rest in the model's precision."""
        runtime = get_runtime("shrink", self.runtime)
        lowered = sorted(name for name, choice in (plan or {}).items()
                         if split_choice(choice)[1])
        if lowered:
            images = calibration if calibration is not None else self._calibration(
                input_shape)
            return runtime.build(model, input_shape, self.lowered, threads=self.threads,
                                 calibration=images, layers=lowered,
                                 rest=self.precisions[0], channels_last=self.channels_last)
        return runtime.build(model, input_shape, self.precisions[0], threads=self.threads,
                             channels_last=self.channels_last)

    def _calibration(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        """The calibration images when they fit ``input_shape``; random ones (timing only:
        the speed of int8 kernels does not depend on the values) when they do not."""
        if self.calibration is not None and \
                tuple(self.calibration.shape[1:]) == tuple(input_shape[1:]):
            return self.calibration
        return torch.randn((max(8, input_shape[0]), *input_shape[1:]))

    def call(self, module: nn.Module, input_shape: tuple[int, ...], lowered: bool
             ) -> tuple[Callable[[], object], list[torch.Tensor]]:
        """A latency-table entry: ``module`` (a layer followed by its norm, named ``0`` and
        ``1``) built with the layer in the lower precision when ``lowered``, as the timing
        harness's ``(call, inputs)``."""
        plan = {"0": f"keep{SEPARATOR}{self.lowered}"} if lowered else None
        return self.artifact(module, input_shape, plan).runner(torch.randn(input_shape)), []

    def speedups(self, reference: nn.Module,
                 models: Mapping[str, tuple[nn.Module, Mapping[str, str]]],
                 input_shape: tuple[int, ...], *, rounds: int = 5, min_run_time: float = 0.2
                 ) -> dict[str, Speedup]:
        """Each ``(model, plan)`` of ``models`` built (:meth:`artifact`) and timed in turns
        with the original ``reference`` in the model's precision (built once), one pair at a
        time (two taking turns in millisecond blocks share the machine's drift)."""
        shape = tuple(input_shape)
        built = self.artifact(reference, shape)
        x = torch.randn(shape)
        result = {}
        for name, (model, plan) in models.items():
            timed = time_artifacts({"reference": built, "model": self.artifact(model, shape,
                                                                               plan)},
                                   x, threads=self.threads, rounds=rounds,
                                   min_run_time=min_run_time)
            result[name] = Speedup(timed.speedup("model", "reference"), timed["reference"][0],
                                   timed["model"][0])
        return result


def _versions(runtime: str) -> str:
    import importlib.metadata

    names = {"onnxruntime": ("onnxruntime",), "openvino": ("openvino", "nncf")}
    return " ".join(f"{name}=={importlib.metadata.version(name)}"
                    for name in names.get(runtime, ()))
