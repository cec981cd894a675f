"""Where ``leanconv shrink`` measures: a runtime (:mod:`leanconv.runtimes`), the precision the
model runs in and at most one lower precision a layer may take instead, the threads and the
memory format. A choice for a layer is an operator spec, or ``spec@precision`` for that
operator in the lower precision (``dwsep@int8``); a plan maps layers to choices.

Every latency shrink uses comes from here: a latency-table entry (:meth:`Deployment.call`
on one layer), a plan against the original (:meth:`Deployment.speedups`, paired ratios of
the two timed in turns), and the deployed result (:meth:`Deployment.artifact`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from leanconv.cost.latency import SideBySide
from leanconv.deploy.latency import Speedup
from leanconv.runtimes import Artifact, check_precision, get_runtime, time_artifacts

SEPARATOR = "@"
# how long a plan is timed against the original: at least ROUNDS turns of MIN_RUN_TIME
# seconds each (FINAL_ROUNDS for the result handed back); read when called
ROUNDS, FINAL_ROUNDS, MIN_RUN_TIME = 5, 7, 0.2


def split_choice(choice: str) -> tuple[str, str | None]:
    """``(spec, lower precision)`` of a plan's choice (``None``: the model's precision)."""
    spec, _, precision = choice.partition(SEPARATOR)
    return spec, precision or None


def specs_of(plan: Mapping[str, str]) -> dict[str, str]:
    """``plan`` with each choice's operator spec alone (what :func:`leanconv.convert` takes)."""
    return {name: split_choice(choice)[0] for name, choice in plan.items()}


@dataclass(frozen=True)
class Deployment:
    """A runtime and its precisions (``precisions[0]``: the model's, which may be a lower
    one such as int8 when given alone, the whole model in it; ``precisions[1]``, when given:
    a lower one single layers may take), ``threads``, the memory format (PyTorch
    only) and the images int8 is calibrated on (``calibration``, N x C x H x W); ``owner``:
    who the errors name (the function or command that asked)."""

    runtime: str = "torch"
    precisions: tuple[str, ...] = ("fp32",)
    threads: int = 1
    channels_last: bool = False
    calibration: torch.Tensor | None = None
    owner: str = field(default="shrink", compare=False)

    def __post_init__(self) -> None:
        owner = self.owner
        runtime = get_runtime(owner, self.runtime)
        if not isinstance(self.precisions, tuple) or not 1 <= len(self.precisions) <= 2:
            raise ValueError(f"{owner}: precision={list(self.precisions)!r} is invalid; give "
                             f"the model's precision and at most one lower precision for "
                             f"single layers, e.g. fp32 int8")
        for precision in self.precisions:
            check_precision(owner, runtime, precision)
        if len(self.precisions) == 2 and self.precisions[0] in runtime.lowered:
            raise ValueError(f"{owner}: precision={self.precisions[0]!r} cannot be the "
                             f"model's in {self.runtime!r} when layers choose a precision; "
                             f"give one of "
                             f"{[p for p in runtime.precisions if p not in runtime.lowered]} "
                             f"first, or {self.precisions[0]!r} alone (the whole model in it, "
                             f"layers choosing operators)")
        if len(self.precisions) == 2 and self.precisions[1] not in runtime.lowered:
            raise ValueError(f"{owner}: precision={self.precisions[1]!r} cannot be chosen per "
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
        lower precision run in it, the rest in the model's precision (int8, of single layers
        or of the whole model, calibrated on ``calibration``, default :attr:`calibration`)."""
        runtime = get_runtime(self.owner, self.runtime)
        images = calibration if calibration is not None else self._calibration(input_shape)
        lowered = sorted(name for name, choice in (plan or {}).items()
                         if split_choice(choice)[1])
        if lowered:
            return runtime.build(model, input_shape, self.lowered, threads=self.threads,
                                 calibration=images, layers=lowered,
                                 rest=self.precisions[0], channels_last=self.channels_last)
        return runtime.build(model, input_shape, self.precisions[0], threads=self.threads,
                             calibration=images, channels_last=self.channels_last)

    def _calibration(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        """The calibration images when they fit ``input_shape``; random ones (timing only:
        the speed of int8 kernels does not depend on the values) when they do not."""
        if self.calibration is not None and \
                tuple(self.calibration.shape[1:]) == tuple(input_shape[1:]):
            return self.calibration
        return torch.randn((max(8, input_shape[0]), *input_shape[1:]))

    def call(self, module: nn.Module, input_shape: tuple[int, ...],
             lowered: Sequence[str] = ()) -> tuple[Callable[[], object], list[torch.Tensor]]:
        """A latency-table entry: ``module`` (a layer followed by its norm) built with its
        submodules ``lowered`` in the lower precision, as the timing harness's
        ``(call, inputs)``."""
        plan = {name: f"keep{SEPARATOR}{self.lowered}" for name in lowered}
        return self.artifact(module, input_shape, plan).runner(torch.randn(input_shape)), []

    def speedups(self, reference: nn.Module,
                 models: Mapping[str, tuple[nn.Module, Mapping[str, str]]],
                 input_shape: tuple[int, ...], *, rounds: int | None = None,
                 min_run_time: float | None = None, final: bool = False
                 ) -> dict[str, Speedup]:
        """Each ``(model, plan)`` of ``models`` built (:meth:`artifact`) and timed in turns
        with the original ``reference`` in the model's precision (built once), one pair at a
        time (two taking turns in millisecond blocks share the machine's drift), for at least
        ``rounds`` turns of ``min_run_time`` seconds (default :data:`ROUNDS`, or
        :data:`FINAL_ROUNDS` when ``final``: the result handed back, and
        :data:`MIN_RUN_TIME`)."""
        shape = tuple(input_shape)
        built = self.artifact(reference, shape)
        result = {}
        for name, (model, plan) in models.items():
            timed = self.side_by_side({"reference": built,
                                       "model": self.artifact(model, shape, plan)}, shape,
                                      rounds=rounds or (FINAL_ROUNDS if final else ROUNDS),
                                      min_run_time=min_run_time)
            result[name] = Speedup(timed.speedup("model", "reference"), timed["reference"][0],
                                   timed["model"][0])
        return result

    def side_by_side(self, artifacts: Mapping[str, Artifact], input_shape: tuple[int, ...],
                     *, rounds: int | None = None, min_run_time: float | None = None
                     ) -> SideBySide:
        """``artifacts`` timed in turns on one random input of ``input_shape`` with the
        deployment's threads, for at least ``rounds`` (default :data:`FINAL_ROUNDS`) turns
        of ``min_run_time`` (default :data:`MIN_RUN_TIME`) seconds."""
        return time_artifacts(artifacts, torch.randn(tuple(input_shape)), threads=self.threads,
                              rounds=rounds or FINAL_ROUNDS,
                              min_run_time=min_run_time or MIN_RUN_TIME)


def _versions(runtime: str) -> str:
    import importlib.metadata

    names = {"onnxruntime": ("onnxruntime",), "openvino": ("openvino", "nncf")}
    return " ".join(f"{name}=={importlib.metadata.version(name)}"
                    for name in names.get(runtime, ()))
