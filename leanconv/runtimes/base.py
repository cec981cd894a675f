"""A runtime: where a model is deployed (PyTorch, onnxruntime, OpenVINO) and in which number
format (``fp32``, ``bf16``, ``int8``, or OpenVINO's ``default``). A :class:`Runtime` builds
an :class:`Artifact` from a PyTorch model: something that runs a batch, can be timed by
leanconv's paired harness and (outside PyTorch) saved as the file a user deploys.

Every runtime is registered in :data:`RUNTIMES` by its short name; :func:`get_runtime`
checks the name, that the runtime is installed (else an error naming the extra that installs
it) and that it offers the precision on this CPU (else why not).
"""

from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from leanconv._validate import check_choice
from leanconv.registry import Registry

METADATA_KEY = "leanconv"  # the artifact file's metadata entry


class Artifact(ABC):
    """A model built for one runtime and precision at ``input_shape`` (N, C, H, W); it runs
    any batch of that C, H, W (``__call__``: float32 outputs, like the PyTorch model), and
    runs fastest at ``input_shape``. ``layers``: the layers (PyTorch module names) it runs in
    ``precision`` when it runs the rest in another (per-layer precision), else None.
    ``metadata``: what the file records of the model (JSON-able; leanconv writes the model
    info: classes, input, normalisation, the data it was trained on)."""

    suffix: ClassVar[str | None] = None  # the file it saves to; None: nothing to save

    def __init__(self, runtime: str, precision: str, input_shape: tuple[int, ...],
                 threads: int) -> None:
        self.runtime, self.precision = runtime, precision
        self.input_shape, self.threads = tuple(input_shape), threads
        self.layers: tuple[str, ...] | None = None  # the layers in `precision`; None: all
        self.metadata: dict[str, Any] = {}  # saved in the file (METADATA_KEY): its model info

    @property
    def name(self) -> str:
        """``runtime precision``, e.g. ``onnxruntime int8``."""
        return f"{self.runtime} {self.precision}"

    @abstractmethod
    def runner(self, x: torch.Tensor) -> Callable[[], object]:
        """A call without arguments that runs ``x`` (converted once, outside the call, to
        what the runtime takes): what the timing harness times."""

    @abstractmethod
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs of ``x`` (a float tensor of C, H, W as built) as float32."""

    def eval(self) -> Artifact:  # an artifact is always in inference mode
        return self

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        """Write the deployable file(s) to ``path`` (atomically); the files written."""
        raise ValueError(f"{self.name}: nothing to save; the PyTorch model is the artifact")

    def check_input(self, x: object) -> None:
        """A clear error when ``x`` is not a batch this artifact takes."""
        expected = self.input_shape[1:]
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{self.name}: input of shape {got} does not match the "
                             f"artifact's input (N, {', '.join(map(str, expected))})")


class Runtime(ABC):
    """One runtime: its name, the precisions it offers, the pip extra that installs it."""

    name: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]]
    extra: ClassVar[str | None] = None  # the leanconv extra that installs it
    modules: ClassVar[tuple[str, ...]] = ()  # the Python modules it needs
    suffix: ClassVar[str | None] = None  # the file of its artifact

    def missing(self) -> str | None:
        """Why this runtime cannot run here (a module is not installed), or None."""
        absent = [name for name in self.modules if importlib.util.find_spec(name) is None]
        if not absent:
            return None
        return (f"runtime {self.name!r} needs {', '.join(absent)}, which is not installed: "
                f"pip install 'leanconv[{self.extra}]'")

    def unsupported(self, precision: str) -> str | None:
        """Why ``precision`` cannot run on this machine (it is one of :attr:`precisions`),
        or None."""
        return None

    def available_precisions(self) -> list[str]:
        """The precisions that run here (none when the runtime is not installed)."""
        if self.missing():
            return []
        return [p for p in self.precisions if self.unsupported(p) is None]

    lowered: ClassVar[tuple[str, ...]] = ()  # precisions a layer may take alone

    @abstractmethod
    def build(self, model: nn.Module, input_shape: tuple[int, ...], precision: str, *,
              threads: int, calibration: torch.Tensor | None = None,
              layers: Sequence[str] | None = None, rest: str | None = None,
              channels_last: bool = False, measure_forms: bool = True) -> Artifact:
        """``model`` (eval mode, not changed) as this runtime's artifact at ``input_shape``
        in ``precision``; ``calibration``: images (N, C, H, W) that int8 is calibrated on.
        Per-layer precision: with ``layers`` (PyTorch module names), only those run in
        ``precision`` (one of :attr:`lowered`) and the rest in ``rest`` (default: the first
        of :attr:`precisions`). ``channels_last``: PyTorch's memory format (the other
        runtimes choose their own layouts). ``measure_forms``: each layer with more than one
        exact form runs in the one measured fastest here, in its precision
        (:mod:`leanconv.runtimes.forms`); else in the fixed forms."""

    def load(self, path: Path, threads: int, precision: str | None = None) -> Artifact:
        """The artifact saved at ``path``."""
        raise ValueError(f"runtime {self.name!r} has no artifact file to load")


RUNTIMES: Registry[Runtime] = Registry("runtime")


def get_runtime(owner: str, name: object, precision: object = None) -> Runtime:
    """The registered runtime ``name``, installed, offering ``precision`` (when given) on
    this machine; a ``ValueError`` that names the argument, the value and what is valid
    otherwise."""
    check_choice(owner, "runtime", name, RUNTIMES.keys())
    runtime = RUNTIMES.get(name)
    if (why := runtime.missing()) is not None:
        raise ValueError(f"{owner}: {why}")
    if precision is not None:
        check_precision(owner, runtime, precision)
    return runtime


def check_layers(owner: str, runtime: Runtime, precision: str,
                 layers: Sequence[str] | None, rest: str | None) -> str:
    """The precision of the layers outside ``layers`` (``rest`` or the runtime's first); a
    ``ValueError`` when ``precision`` cannot be given to single layers."""
    base = rest or runtime.precisions[0]
    if layers is not None and precision not in runtime.lowered:
        raise ValueError(f"{owner}: precision={precision!r} cannot be given to single layers "
                         f"in {runtime.name!r}; per layer: {', '.join(runtime.lowered)}")
    if layers is not None and (base == precision or base in runtime.lowered):
        raise ValueError(f"{owner}: rest={base!r} is invalid with per-layer {precision!r}; "
                         f"the rest runs in one of "
                         f"{', '.join(p for p in runtime.precisions if p not in runtime.lowered)}")
    return base


def check_precision(owner: str, runtime: Runtime, precision: object) -> str:
    """``precision`` when ``runtime`` runs it here, else a ``ValueError`` saying why."""
    if precision not in runtime.precisions:
        raise ValueError(f"{owner}: precision={precision!r} is invalid for runtime "
                         f"{runtime.name!r}; valid: {', '.join(runtime.precisions)}")
    if (why := runtime.unsupported(str(precision))) is not None:
        raise ValueError(f"{owner}: precision={precision!r} does not run here on "
                         f"{runtime.name!r}: {why}")
    return str(precision)


def load_artifact(path: str | os.PathLike[str], threads: int, precision: str | None = None
                  ) -> Artifact:
    """The deployable file at ``path`` (``.onnx``: onnxruntime; ``.xml``: OpenVINO IR with
    its ``.bin``) as an artifact that runs with ``threads`` threads."""
    file = Path(path)
    by_suffix = {runtime.suffix: runtime for runtime in RUNTIMES.values() if runtime.suffix}
    if file.suffix not in by_suffix:
        raise ValueError(f"load_artifact: path={str(path)!r} is not a runtime artifact; "
                         f"expected a file ending in {', '.join(sorted(by_suffix))}")
    if not file.is_file():
        raise ValueError(f"load_artifact: path={str(path)!r} does not exist")
    runtime = get_runtime("load_artifact", by_suffix[file.suffix].name)
    artifact = runtime.load(file, threads, precision)
    if len(artifact.input_shape) != 4:
        raise ValueError(f"load_artifact: {str(path)!r} takes input of shape "
                         f"{artifact.input_shape}; leanconv evaluates image models, "
                         f"(N, C, H, W)")
    return artifact
