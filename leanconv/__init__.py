"""leanconv: efficient convolution operators as exact drop-in PyTorch modules.

The public names below are imported on first use (PEP 562 ``__getattr__``): ``import
leanconv`` itself loads nothing heavy, so the command line starts fast and a user who only
builds operators never imports the converter, the cost model, the deployment code or
torchvision.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# torch.utils.cpp_extension (imported by torch.utils.benchmark and by the kernel build) logs
# "No CUDA runtime is found" on every CPU-only machine: noise on the machines leanconv
# targets, so that one message is filtered; the logger's other records pass
logging.getLogger("torch.utils.cpp_extension").addFilter(
    lambda record: not record.getMessage().startswith("No CUDA runtime is found"))

# public name -> the module that defines it
_EXPORTS = {
    "ConversionPolicy": "leanconv.converter", "ConversionReport": "leanconv.converter",
    "convert": "leanconv.converter",
    "Profile": "leanconv.cost", "profile": "leanconv.cost",
    "compile_model": "leanconv.deploy", "export_onnx": "leanconv.deploy",
    "fold": "leanconv.deploy",
    "shrink": "leanconv.search",
    "ModelInfo": "leanconv.loading", "load_model": "leanconv.loading",
    "create_model": "leanconv.models", "list_models": "leanconv.models",
    **{name: "leanconv.ops" for name in (
        "ChannelShuffle", "CompConv2d", "DeformConv2d", "DepthwiseConv2d",
        "DepthwiseSeparableConv2d", "GroupConv2d", "HetConv2d", "MixConv2d", "MixedGroupConv",
        "SqueezeExcite", "StackedConv2d", "conv_spec_help", "create_conv", "parse_conv_spec")},
}

__all__ = [
    "ChannelShuffle",
    "CompConv2d",
    "ConversionPolicy",
    "ConversionReport",
    "DeformConv2d",
    "DepthwiseConv2d",
    "DepthwiseSeparableConv2d",
    "GroupConv2d",
    "HetConv2d",
    "MixConv2d",
    "MixedGroupConv",
    "ModelInfo",
    "Profile",
    "SqueezeExcite",
    "StackedConv2d",
    "__version__",
    "compile_model",
    "conv_spec_help",
    "convert",
    "create_conv",
    "create_model",
    "export_onnx",
    "fold",
    "list_models",
    "load_model",
    "parse_conv_spec",
    "profile",
    "shrink",
]

if TYPE_CHECKING:  # what static tools see; at run time __getattr__ imports on demand
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'leanconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
