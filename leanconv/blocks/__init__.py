"""The blocks of the efficient-network papers (docs/operators.md maps them to the papers), each
taking its spatial conv as an argument (a spec string of :func:`leanconv.create_conv` or a
factory), so any operator can be plugged in."""

from leanconv.blocks.conv_norm_act import ConvNormAct
from leanconv.blocks.inception import InceptionBlock
from leanconv.blocks.inverted_residual import InvertedResidual
from leanconv.blocks.residual import BasicBlock, Bottleneck
from leanconv.blocks.shuffle_unit import ShuffleUnitV1, ShuffleUnitV2

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ConvNormAct",
    "InceptionBlock",
    "InvertedResidual",
    "ShuffleUnitV1",
    "ShuffleUnitV2",
]
