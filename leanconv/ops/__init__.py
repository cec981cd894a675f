"""Efficient convolution operators, each an exact drop-in ``nn.Module`` (one file each)."""

from leanconv.ops.channel_shuffle import ChannelShuffle, channel_shuffle
from leanconv.ops.comp_conv import CompConv2d, CompConvPlan, adaptive_depth
from leanconv.ops.create_conv import (
    CONV_KINDS,
    ConvFactory,
    ConvKind,
    ConvSpec,
    SpecParam,
    conv_spec_help,
    create_conv,
    create_conv_like,
    parse_conv_spec,
    register_conv_kind,
)
from leanconv.ops.deform_conv import DeformConv2d
from leanconv.ops.depthwise_conv import DepthwiseConv2d
from leanconv.ops.dwsep_conv import DepthwiseSeparableConv2d
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.het_conv import HetConv2d
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv, split_channels
from leanconv.ops.padding import get_padding
from leanconv.ops.squeeze_excite import SqueezeExcite
from leanconv.ops.stacked_conv import StackedConv2d

__all__ = [
    "CONV_KINDS",
    "ChannelShuffle",
    "CompConv2d",
    "CompConvPlan",
    "ConvFactory",
    "ConvKind",
    "ConvSpec",
    "DeformConv2d",
    "DepthwiseConv2d",
    "DepthwiseSeparableConv2d",
    "GroupConv2d",
    "HetConv2d",
    "MixConv2d",
    "MixedGroupConv",
    "SpecParam",
    "SqueezeExcite",
    "StackedConv2d",
    "adaptive_depth",
    "channel_shuffle",
    "conv_spec_help",
    "create_conv",
    "create_conv_like",
    "get_padding",
    "parse_conv_spec",
    "register_conv_kind",
    "split_channels",
]
