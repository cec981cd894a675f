"""onnxruntime on the CPU: ``fp32`` (the folded model's ONNX export with onnxruntime's own
graph optimisations) and ``int8`` (onnxruntime's static quantizer: QDQ format, weights int8
per output channel, activations uint8 per tensor, ranges calibrated (min-max) on the user's
images; onnxruntime fuses each QDQ-wrapped conv into an int8 kernel at load). A layer kept in
fp32 is left out of quantization by its node names. Sessions pin ``threads`` intra-op threads
that do not spin (:func:`leanconv.deploy.onnx_export.onnxruntime_session`)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from leanconv.deploy.onnx_export import onnxruntime_session
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

CALIBRATION_BATCH = 32


class OnnxruntimeArtifact(Artifact):
    """An onnxruntime session over an ONNX model (kept as bytes, to save)."""

    suffix = ".onnx"

    def __init__(self, data: bytes, precision: str, input_shape: tuple[int, ...],
                 threads: int) -> None:
        super().__init__("onnxruntime", precision, input_shape, threads)
        self.data = data
        self.session = onnxruntime_session(data, threads)
        self.input_name = self.session.get_inputs()[0].name

    def _feed(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        self.check_input(x)
        return {self.input_name: x.detach().float().contiguous().numpy()}

    def runner(self, x: torch.Tensor) -> Callable[[], object]:
        feed = self._feed(x)
        return lambda: self.session.run(None, feed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outputs = self.session.run(None, self._feed(x))
        return torch.from_numpy(np.asarray(outputs[0], np.float32))

    def save(self, path: str | os.PathLike[str]) -> list[Path]:
        import onnx

        proto = onnx.load_from_string(self.data)
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(self.metadata)})
        return [atomic_write_bytes(path, proto.SerializeToString())]


def quantize_int8(data: bytes, batches: list[torch.Tensor], only: Sequence[str] | None
                  ) -> bytes:
    """``data`` quantized by onnxruntime's static quantizer (module docstring): every node,
    or the nodes ``only``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self, input_name: str) -> None:
            self.feeds = iter([{input_name: b.numpy()} for b in batches])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.feeds, None)

    import onnx

    input_name = onnx.load_from_string(data).graph.input[0].name
    with onnx_file(data) as source, quiet([""]):  # its pre-processing hint, on the root logger
        target = source.with_name("int8.onnx")
        quantize_static(str(source), str(target), Reader(input_name),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_quantize=None if only is None else list(only))
        return target.read_bytes()


class OnnxruntimeRuntime(Runtime):
    """onnxruntime's CPU execution provider (module docstring)."""

    name = "onnxruntime"
    precisions = ("fp32", "int8")
    lowered = ("int8",)
    extra = "onnx"
    modules = ("onnx", "onnxscript", "onnxruntime")
    suffix = ".onnx"

    def build(self, model: nn.Module, input_shape: tuple[int, ...], precision: str, *,
              threads: int, calibration: torch.Tensor | None = None,
              layers: Sequence[str] | None = None, rest: str | None = None,
              channels_last: bool = False, measure_forms: bool = True) -> Artifact:
        check_layers("onnxruntime", self, precision, layers, rest)
        timer = runtime_form_timer(self, precision, threads, layers=layers,
                                   rest=rest) if measure_forms else None
        data = export_for_runtime(model, input_shape, threads, timer)
        if precision == "int8" and layers != []:
            batches = calibration_batches(calibration, "onnxruntime int8", CALIBRATION_BATCH)
            only = None if layers is None else layer_nodes(data, layers)
            data = quantize_int8(data, batches, only)
        artifact = OnnxruntimeArtifact(data, precision, input_shape, threads)
        artifact.layers = None if layers is None else tuple(layers)
        return artifact

    def load(self, path: Path, threads: int, precision: str | None = None) -> Artifact:
        import onnx

        data = path.read_bytes()
        try:
            proto = onnx.load_from_string(data)
        except Exception as error:  # onnx raises its protobuf's DecodeError
            raise ValueError(f"load_artifact: {str(path)!r} is not an ONNX model: "
                             f"{str(error).splitlines()[0]}") from None
        ops = {node.op_type for node in proto.graph.node}
        found = "int8" if ops & {"QuantizeLinear", "QLinearConv"} else "fp32"
        shape = tuple(d.dim_value or 1 for d in
                      proto.graph.input[0].type.tensor_type.shape.dim)
        artifact = OnnxruntimeArtifact(data, precision or found, shape, threads)
        stored = {prop.key: prop.value for prop in proto.metadata_props}.get(METADATA_KEY)
        artifact.metadata = json.loads(stored) if stored else {}
        return artifact


RUNTIMES.add("onnxruntime", OnnxruntimeRuntime())
