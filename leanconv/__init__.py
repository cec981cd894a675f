"""leanconv: efficient convolution operators as exact drop-in PyTorch modules."""

from leanconv.convert import ConversionPolicy, ConversionReport, convert
from leanconv.cost import Profile, profile
from leanconv.deploy import compile, export_onnx, fold
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

__version__ = "0.1.0"

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
    "Profile",
    "SqueezeExcite",
    "StackedConv2d",
    "__version__",
    "compile",
    "conv_spec_help",
    "convert",
    "create_conv",
    "create_model",
    "export_onnx",
    "fold",
    "list_models",
    "parse_conv_spec",
    "profile",
]
