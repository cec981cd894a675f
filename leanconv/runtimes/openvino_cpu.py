"""OpenVINO on the CPU, from the folded model's ONNX export: ``default`` (what OpenVINO runs
when told nothing: bf16 on a CPU with native bf16, e.g. AVX-512 BF16 or AMX, else f32),
``fp32`` (inference precision pinned to f32) and ``int8`` (NNCF post-training quantization,
calibrated on the user's images, then OpenVINO's default precision for what stays in float).
A layer kept in fp32 is in NNCF's ignored scope by its node names. ``INFERENCE_NUM_THREADS``
pins the threads; the ``LATENCY`` hint runs one request on one stream. The artifact is the
OpenVINO IR (``model.xml`` with ``model.bin``), saved with a free batch dimension."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from leanconv.io import atomic_write_bytes, quiet
from leanconv.runtimes.base import (
    METADATA_KEY,
    RUNTIMES,
    Artifact,
    Runtime,
    check_layers,
)
from leanconv.runtimes.forms import runtime_form_timer
from leanconv.runtimes.onnx_graph import (
    calibration_batches,
    export_for_runtime,
    layer_nodes,
    onnx_file,
)

HINTS = {"default": None, "fp32": "f32"}  # OpenVINO's inference precision hint


def _config(threads: int, precision: str) -> dict[str, Any]:
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if HINTS[precision]:
        config["INFERENCE_PRECISION_HINT"] = HINTS[precision]
    return config


class OpenvinoArtifact(Artifact):
    """An OpenVINO model compiled at the build shape (timed), and with a free batch for
    other batch sizes (compiled on first use)."""

    suffix = ".xml"

    def __init__(self, model: Any, precision: str, input_shape: tuple[int, ...],
                 threads: int, compile_as: str) -> None:
        import openvino

        super().__init__("openvino", precision, input_shape, threads)
        self.model, self.core, self.compile_as = model, openvino.Core(), compile_as
        static = model.clone()
        static.reshape({static.inputs[0].get_any_name(): list(input_shape)})
        self.compiled = self.core.compile_model(static, "CPU", _config(threads, compile_as))
        self.dynamic: Any = None
        self.inference_precision = self.compiled.get_property(
            "INFERENCE_PRECISION_HINT").get_type_name()

    def _compiled_for(self, x: torch.Tensor) -> Any:
        if tuple(x.shape) == self.input_shape:
            return self.compiled
        if self.dynamic is None:
            self.dynamic = self.core.compile_model(self.model, "CPU",
                                                   _config(self.threads, self.compile_as))
        return self.dynamic

    def runner(self, x: torch.Tensor) -> Callable[[], object]:
        self.check_input(x)
        compiled, array = self._compiled_for(x), x.detach().float().contiguous().numpy()
        request = compiled.create_infer_request()
        return lambda: request.infer([array])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        result = self._compiled_for(x)([x.detach().float().contiguous().numpy()])
        return torch.from_numpy(np.asarray(result[0], np.float32))

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        """``path`` (``.xml``) and the weights beside it (``.bin``), each written whole."""
        import openvino

        target = Path(path)
        with tempfile.TemporaryDirectory(prefix="leanconv-ir-") as folder:
            staged = Path(folder) / "model.xml"
            model = self.model.clone()
            model.set_rt_info(json.dumps(self.metadata), [METADATA_KEY])
            openvino.save_model(model, str(staged), compress_to_fp16=False)
            weights = atomic_write_bytes(target.with_suffix(".bin"),
                                         staged.with_suffix(".bin").read_bytes())
            xml = atomic_write_bytes(target, staged.read_bytes())
        return [xml, weights]


def _openvino_names(model: Any, onnx_nodes: Sequence[str]) -> list[str]:
    """The OpenVINO operations made from the ONNX nodes ``onnx_nodes``: OpenVINO splits a
    biased Conv or Gemm into ``NAME/WithoutBiases`` and an Add named ``NAME``, so an
    operation belongs to a node when its name, up to the first ``/``, is the node's."""
    wanted = set(onnx_nodes)
    return [op.get_friendly_name() for op in model.get_ops()
            if op.get_friendly_name().split("/")[0] in wanted]


class OpenvinoRuntime(Runtime):
    """OpenVINO's CPU plugin (module docstring)."""

    name = "openvino"
    precisions = ("default", "fp32", "int8")
    lowered = ("int8",)
    extra = "openvino"
    modules = ("onnx", "onnxscript", "onnxruntime", "openvino", "nncf")
    suffix = ".xml"

    def build(self, model: nn.Module, input_shape: tuple[int, ...], precision: str, *,
              threads: int, calibration: torch.Tensor | None = None,
              layers: Sequence[str] | None = None, rest: str | None = None,
              channels_last: bool = False, measure_forms: bool = True) -> Artifact:
        import openvino

        base = check_layers("openvino", self, precision, layers, rest)
        timer = runtime_form_timer(self, precision, threads, layers=layers,
                                   rest=rest) if measure_forms else None
        data = export_for_runtime(model, input_shape, threads, timer)
        with onnx_file(data) as path:
            ov_model = openvino.Core().read_model(str(path))
        if precision == "int8" and layers != []:
            import nncf

            images = [b.numpy() for b in calibration_batches(calibration, "openvino int8", 1)]
            ignored = [] if layers is None else _openvino_names(
                ov_model, layer_nodes(data, layers, outside=True))
            with quiet(["nncf"], stderr=True):  # its progress bar and log lines
                ov_model = nncf.quantize(
                    ov_model, nncf.Dataset(images), subset_size=len(images),
                    ignored_scope=nncf.IgnoredScope(names=ignored, validate=False))
        # int8 of the whole model: the rest in OpenVINO's default; per layer: in ``base``
        compile_as = base if layers is not None else ("default" if precision == "int8"
                                                       else precision)
        artifact = OpenvinoArtifact(ov_model, precision, input_shape, threads, compile_as)
        artifact.layers = None if layers is None else tuple(layers)
        return artifact

    def load(self, path: Path, threads: int, precision: str | None = None) -> Artifact:
        import openvino

        if not path.with_suffix(".bin").is_file():
            raise ValueError(f"load_artifact: {str(path)!r} has no weights file "
                             f"{str(path.with_suffix('.bin'))!r} beside it")
        try:
            model = openvino.Core().read_model(str(path))
        except RuntimeError as error:
            raise ValueError(f"load_artifact: {str(path)!r} is not an OpenVINO IR: "
                             f"{str(error).splitlines()[0]}") from None
        found = ("int8" if any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
                 else "default")
        shape = tuple(d.get_length() if d.is_static else 1
                      for d in model.inputs[0].get_partial_shape())
        precision = precision or found
        artifact = OpenvinoArtifact(model, precision, shape, threads,
                                    "default" if precision == "int8" else precision)
        if model.has_rt_info([METADATA_KEY]):
            artifact.metadata = json.loads(model.get_rt_info([METADATA_KEY]).astype(str))
        return artifact


RUNTIMES.add("openvino", OpenvinoRuntime())
