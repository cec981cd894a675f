"""leanconv: efficient convolution operators as exact drop-in PyTorch modules.

The public API is the ``if TYPE_CHECKING:`` block below, listed once: static tools read its
imports, and at run time :func:`__getattr__` imports a name from its module on first use
(PEP 562), the table of names read from that same block. ``import leanconv`` itself loads
nothing heavy, so the command line starts fast and a user who only builds operators never
imports the converter, the cost model, the deployment code or torchvision.
"""

from __future__ import annotations

import ast
import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# torch.utils.cpp_extension (imported by torch.utils.benchmark and by the kernel build) logs
# "No CUDA runtime is found" on every CPU-only machine: noise on the machines leanconv
# targets, so that one message is filtered; the logger's other records pass
logging.getLogger("torch.utils.cpp_extension").addFilter(
    lambda record: not record.getMessage().startswith("No CUDA runtime is found"))

if TYPE_CHECKING:
    from leanconv.converter import ConversionPolicy, ConversionReport, convert
    from leanconv.cost import Profile, profile
    from leanconv.deploy import compile_model, export_onnx, fold
    from leanconv.loading import ModelInfo, load_model
    from leanconv.models import create_model, list_models
    from leanconv.ops import (
        ChannelShuffle,
        CompConv2d,
        DeformConv2d,
        DepthwiseConv2d,
        DepthwiseSeparableConv2d,
        GroupConv2d,
        HetConv2d,
        MixConv2d,
        MixedGroupConv,
        SqueezeExcite,
        StackedConv2d,
        conv_spec_help,
        create_conv,
        parse_conv_spec,
    )
    from leanconv.search import shrink


def _public_names() -> dict[str, str]:
    """Public name -> the module that defines it: the imports of the ``if TYPE_CHECKING:``
    block of this file."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    return {alias.name: node.module for node in block.body
            if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}


_EXPORTS = _public_names()
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'leanconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
