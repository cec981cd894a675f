"""ONNX export with verified parity: ``export_onnx(model, path, input_shape)``.

``torch.onnx.export`` (the dynamo exporter, with ``onnx`` and ``onnxscript``) writes the
folded model (:func:`leanconv.fold`, fused HetConv, split MixConv, grouped group convs: a
fixed graph, not one measured on PyTorch's kernels; a runtime of :mod:`leanconv.runtimes`
exports each layer in the form it measured fastest there). Channel shuffles export as
Reshape/Transpose, MixConv's channel split as a static Split, padding as numbers.
torchvision's ``deform_conv2d`` has no ONNX translation in the exporter;
:func:`deform_conv2d_to_onnx` maps it to the ONNX ``DeformConv`` operator (opset 19).

The exported model is checked with ``onnx.checker``, run in onnxruntime (CPU execution
provider) on a random input and compared with the original PyTorch model; the file is written
(atomically) only when the largest absolute difference is within ``atol``.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from leanconv._validate import check_input_shape, check_int, check_module, check_threads
from leanconv.deploy.fold import fold
from leanconv.errors import ExportError
from leanconv.io import atomic_write_bytes, quiet
from leanconv.ops.deform_conv import DeformConv2d

DEFAULT_OPSET = 19
MIN_OPSET = 18  # the dynamo exporter's lowest
DEFORM_OPSET = 19  # ONNX DeformConv
# the exporter prints progress and onnx_ir warns about empty attributes
EXPORT_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx")


@dataclass(frozen=True)
class OnnxExport:
    """The result of :func:`export_onnx`."""

    path: Path
    opset: int
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    max_abs_diff: float | None  # None: onnxruntime lacks an operator (a warning said so)
    operators: tuple[str, ...]
    seconds: float

    def summary(self) -> str:
        size = "x".join(map(str, self.input_shape))
        return (f"wrote {self.path} (opset {self.opset}, input {size}"
                f"{', dynamic batch' if self.dynamic_batch else ''}); onnxruntime vs PyTorch: "
                + ("not verified" if self.max_abs_diff is None
                   else f"max |diff| = {self.max_abs_diff:.2e}")
                + f"; operators: {', '.join(self.operators)}")


def deform_conv2d_to_onnx(input: Any, weight: Any, offset: Any, mask: Any, bias: Any,
                          stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
                          dilation_w: int, groups: int, offset_groups: int,
                          use_mask: bool) -> Any:
    """``torchvision::deform_conv2d`` as ONNX ``DeformConv`` (same offset layout: (dy, dx)
    pairs per kernel tap and offset group)."""
    from onnxscript import opset19 as op

    inputs = [input, weight, offset, bias] + ([mask] if use_mask else [])
    return op.DeformConv(*inputs, dilations=[dilation_h, dilation_w], group=groups,
                         offset_group=offset_groups, pads=[pad_h, pad_w, pad_h, pad_w],
                         strides=[stride_h, stride_w])


def _check_args(model: object, path: object, input_shape: object, opset: object,
                threads: object, atol: object) -> None:
    check_module("export_onnx", "model", model)
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ValueError(f"export_onnx: path={path!r} is invalid; expected a file name, e.g. "
                         f"model.onnx")
    if Path(path).is_dir():
        raise ValueError(f"export_onnx: path={str(path)!r} is a directory; give a file name")
    shape = check_input_shape("export_onnx", input_shape)
    if len(shape) != 4:
        raise ValueError(f"export_onnx: input_shape={input_shape!r} is invalid; expected "
                         f"(N, C, H, W), e.g. (1, 3, 224, 224)")
    check_int("export_onnx", "opset", opset, minimum=MIN_OPSET)
    if opset < DEFORM_OPSET and any(isinstance(m, DeformConv2d) for m in model.modules()):
        raise ValueError(f"export_onnx: opset={opset} is invalid for a model with "
                         f"DeformConv2d; ONNX DeformConv needs opset >= {DEFORM_OPSET}")
    check_threads("export_onnx", threads)
    if isinstance(atol, bool) or not isinstance(atol, int | float) or not atol > 0:
        raise ValueError(f"export_onnx: atol={atol!r} is invalid; expected a positive number")


def onnxruntime_session(model_bytes: bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session (``threads`` intra-op threads; default: onnxruntime's) whose
    threads do not spin while idle: a spinning onnxruntime pool steals the cores from
    whatever runs next in the same process (measured: PyTorch timed after it ran slower)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model_bytes, options,
                                        providers=["CPUExecutionProvider"])


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: tuple[int, ...],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    fold_first: bool = True,
    threads: int | None = None,
    atol: float = 1e-4,
) -> OnnxExport:
    """Export ``model`` (eval mode) to ``path`` and verify it in onnxruntime (module docstring).

    ``input_shape``: (N, C, H, W) of the example input; ``dynamic_batch`` leaves N free
    (verified at N and N + 1). ``fold_first`` exports :func:`leanconv.fold`'s form. Raises
    :class:`ExportError` (and writes nothing) when onnxruntime differs by more than ``atol``.
    """
    _check_args(model, path, input_shape, opset, threads, atol)
    start = time.perf_counter()
    data, operators, diff = onnx_bytes(model, tuple(input_shape), opset=opset,
                                       dynamic_batch=dynamic_batch, fold_first=fold_first,
                                       threads=threads, atol=atol)
    shape = tuple(input_shape)
    written = atomic_write_bytes(path, data)
    return OnnxExport(written, opset, shape, dynamic_batch, diff, operators,
                      time.perf_counter() - start)


def onnx_bytes(model: nn.Module, input_shape: tuple[int, ...], *, opset: int = DEFAULT_OPSET,
               dynamic_batch: bool = False, fold_first: bool = True,
               threads: int | None = None, atol: float = 1e-4
               ) -> tuple[bytes, tuple[str, ...], float | None]:
    """The ONNX model :func:`export_onnx` writes, as bytes, with its operator types and its
    largest difference from PyTorch (None: not verified); :class:`ExportError` when it fails
    the checker or differs by more than ``atol``. Each node keeps the exporter's module
    scopes (``pkg.torch.onnx.name_scopes``), so a node can be traced to its layer."""
    try:
        import onnx
    except ImportError as error:
        raise ValueError("export_onnx needs the onnx extra: pip install 'leanconv[onnx]'"
                         ) from error
    shape = tuple(input_shape)
    reference = copy.deepcopy(model).eval()
    exported = (fold(reference, hetconv="fused", mixconv="split", groupconv="grouped")[0]
                if fold_first else reference)
    example = torch.randn(shape)
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    with quiet(EXPORT_LOGGERS), torch.no_grad():
        program = torch.onnx.export(
            exported, (example,), dynamo=True, opset_version=opset, dynamic_shapes=dynamic,
            custom_translation_table={
                torch.ops.torchvision.deform_conv2d.default: deform_conv2d_to_onnx},
            verbose=False, optimize=True)
    proto = program.model_proto
    data = proto.SerializeToString()
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"export_onnx: onnx.checker rejected the export: {error}") from error
    operators = tuple(sorted({node.op_type for node in proto.graph.node}))
    diff = _parity(reference, data, shape, dynamic_batch, threads, operators)
    if diff is not None and not diff <= atol:
        raise ExportError(f"export_onnx: onnxruntime differs from PyTorch by {diff:.3e} "
                          f"(> atol={atol:g}); nothing was written")
    return data, operators, diff


def _parity(reference: nn.Module, data: bytes, shape: tuple[int, ...], dynamic_batch: bool,
            threads: int | None, operators: tuple[str, ...]) -> float | None:
    """Largest |onnxruntime - PyTorch| on random inputs; None (with a warning) when the
    installed onnxruntime does not implement an operator the export needs (DeformConv)."""
    import onnxruntime

    try:
        session = onnxruntime_session(data, threads)
    except Exception as error:  # onnxruntime raises its own exception types
        if "DeformConv" in operators and "DeformConv" in str(error):
            warnings.warn(f"export_onnx: not verified: onnxruntime {onnxruntime.__version__} "
                          f"does not implement DeformConv ({str(error).splitlines()[0]})",
                          stacklevel=3)
            return None
        raise ExportError(f"export_onnx: onnxruntime cannot load the export: {error}") from None
    batches = (shape[0], shape[0] + 1) if dynamic_batch else (shape[0],)
    diff = 0.0
    for batch in batches:
        x = torch.randn((batch, *shape[1:]))
        with torch.no_grad():
            expected = reference(x).numpy()
        actual = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        diff = max(diff, float(np.abs(actual - expected).max()))
    return diff
