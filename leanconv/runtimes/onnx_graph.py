"""The ONNX form every runtime but PyTorch starts from: the folded model, each layer in the
form the runtime measured fastest (:mod:`leanconv.runtimes.forms`), exported with verified
parity (:func:`leanconv.deploy.onnx_export.onnx_bytes`, dynamic batch), and the
nodes of a PyTorch layer in it, found through the module scopes the exporter records on each
node (``pkg.torch.onnx.name_scopes``): how one layer is kept in fp32 while the rest is
quantized."""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from leanconv.deploy.autotune import FormTimer
from leanconv.deploy.fold import fold
from leanconv.deploy.onnx_export import onnx_bytes

SCOPES_KEY = "pkg.torch.onnx.name_scopes"


def export_for_runtime(model: nn.Module, input_shape: tuple[int, ...], threads: int,
                       timer: FormTimer | None = None) -> bytes:
    """``model`` folded and exported to ONNX with a free batch dimension, checked against
    PyTorch in onnxruntime; with ``timer``, each layer that has more than one exact form
    takes the one ``timer`` measures fastest, else the fixed forms of
    :func:`leanconv.deploy.onnx_export.onnx_bytes`."""
    if timer is not None:
        model = fold(model, tuple(input_shape), threads=threads, timer=timer)[0]
    data, _, _ = onnx_bytes(model, tuple(input_shape), dynamic_batch=True, threads=threads)
    return data


def layer_nodes(data: bytes, layers: Sequence[str], *, outside: bool = False) -> list[str]:
    """The names of the nodes of ``data`` (an ONNX model) that compute the PyTorch modules
    ``layers`` (a node belongs to a layer when the layer is one of its module scopes), or
    with ``outside`` every other node; a ``ValueError`` naming the layers no node belongs
    to."""
    import onnx

    proto = onnx.load_from_string(data)
    wanted, found, nodes = set(layers), set(), []
    for node in proto.graph.node:
        scopes = next((prop.value for prop in node.metadata_props if prop.key == SCOPES_KEY),
                      None)
        hit = wanted.intersection(ast.literal_eval(scopes)) if scopes else set()
        found |= hit
        if bool(hit) != outside:
            nodes.append(node.name)
    if wanted - found:
        raise ValueError(f"layer_nodes: no ONNX node computes {sorted(wanted - found)}; "
                         f"the exporter recorded no module scope for them")
    return nodes


@contextmanager
def onnx_file(data: bytes) -> Iterator[Path]:
    """``data`` written to a temporary ``model.onnx`` (for the tools that read files)."""
    with tempfile.TemporaryDirectory(prefix="leanconv-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(data)
        yield path


def calibration_batches(calibration: torch.Tensor | None, owner: str, batch: int
                        ) -> list[torch.Tensor]:
    """``calibration`` (N, C, H, W images) in batches of ``batch``; a ``ValueError`` when
    int8 is asked without images."""
    if calibration is None or not isinstance(calibration, torch.Tensor) or \
            calibration.dim() != 4 or not len(calibration):
        raise ValueError(f"{owner}: int8 needs calibration images (N, C, H, W) from the data "
                         f"the model will see; got {type(calibration).__name__}")
    return list(calibration.float().split(batch))
