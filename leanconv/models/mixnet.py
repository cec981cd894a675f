"""MixNet-S/M/L, built from a block-definition table.

M. Tan, Q. V. Le, "MixConv: Mixed Depthwise Convolutional Kernels", BMVC 2019,
arXiv:1907.09595.

Each table row is one group of identical blocks, read left to right::

    n   kernels   expand  out  stride  se    act    groups
    3   3.5       6       40   1       0.5   swish  2.2

= 3 inverted-residual blocks whose depthwise conv is a MixConv with 3x3 and 5x5 kernel groups,
expansion 6, 40 output channels, stride 1 (first block only), squeeze-excite with
``0.5 * C_in`` reduced channels, swish activation, and 2-group expansion / projection 1x1
convs (MixNet's ``MixedGroupConv``). ``se`` ``-`` means none; expansion 1 is a depthwise-
separable block. MixNet-L is MixNet-M at width 1.3 (channels rounded to 8; the 1536-channel
head is not scaled).

The only KxK non-depthwise conv is the stem, so ``conv`` acts only with ``conv_stem=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from leanconv.blocks.conv_norm_act import ConvNormAct
from leanconv.blocks.inverted_residual import InvertedResidual
from leanconv.models.base import ClassifierHead, LeanNet, check_width, make_divisible
from leanconv.models.registry import register_model

MIXNET_S = """
n  kernels     expand  out  stride  se    act    groups
1  3           1       16   1       -     relu   1.1
1  3           6       24   2       -     relu   2.2
1  3           3       24   1       -     relu   2.2
1  3.5.7       6       40   2       0.5   swish  1.1
3  3.5         6       40   1       0.5   swish  2.2
1  3.5.7       6       80   2       0.25  swish  1.2
2  3.5         6       80   1       0.25  swish  1.2
1  3.5.7       6       120  1       0.5   swish  2.2
2  3.5.7.9     3       120  1       0.5   swish  2.2
1  3.5.7.9.11  6       200  2       0.5   swish  1.1
2  3.5.7.9     6       200  1       0.5   swish  1.2
"""

MIXNET_M = """
n  kernels     expand  out  stride  se    act    groups
1  3           1       24   1       -     relu   1.1
1  3.5.7       6       32   2       -     relu   2.2
1  3           3       32   1       -     relu   2.2
1  3.5.7.9     6       40   2       0.5   swish  1.1
3  3.5         6       40   1       0.5   swish  2.2
1  3.5.7       6       80   2       0.25  swish  1.1
3  3.5.7.9     6       80   1       0.25  swish  2.2
1  3           6       120  1       0.5   swish  1.1
3  3.5.7.9     3       120  1       0.5   swish  2.2
1  3.5.7.9     6       200  2       0.5   swish  1.1
3  3.5.7.9     6       200  1       0.5   swish  1.2
"""

ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU}


@dataclass(frozen=True)
class BlockRow:
    """One row of a MixNet table."""

    repeats: int
    kernel_sizes: tuple[int, ...]
    expand: int
    out: int
    stride: int
    se: float
    act: str
    expand_groups: int
    project_groups: int


def parse_block_table(table: str) -> list[BlockRow]:
    """Rows of a table in the format of the module docstring (header line first)."""
    lines = [line.split() for line in table.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    parsed = []
    for cells in rows:
        if len(cells) != len(header):
            raise ValueError(f"parse_block_table: row {' '.join(cells)!r} has {len(cells)} "
                             f"cells; expected {len(header)}: {' '.join(header)}")
        n, kernels, expand, out, stride, se, act, groups = cells
        if act not in ACTIVATIONS:
            raise ValueError(f"parse_block_table: act={act!r} is invalid; choose one of "
                             f"{', '.join(ACTIVATIONS)}")
        exp_groups, proj_groups = (int(g) for g in groups.split("."))
        parsed.append(BlockRow(int(n), tuple(int(k) for k in kernels.split(".")), int(expand),
                               int(out), int(stride), 0.0 if se == "-" else float(se), act,
                               exp_groups, proj_groups))
    return parsed


def mixnet(table: str, stem: int, width: float = 1.0, num_classes: int = 1000,
           in_chans: int = 3, conv: str | None = None, conv_stem: bool = False,
           small_input: bool = False, dropout: float = 0.2, head: int = 1536) -> LeanNet:
    """A MixNet from a block table: stem 3x3 conv, the table's blocks, 1x1 head conv."""
    width = check_width("mixnet", width)
    channels = make_divisible(stem * width)
    stem_conv = (conv or "standard") if conv_stem else "standard"
    stem_layer = ConvNormAct(in_chans, channels, 3, 1 if small_input else 2, conv=stem_conv)
    blocks = []
    for row in parse_block_table(table):
        out = make_divisible(row.out * width)
        kernels = ".".join(map(str, row.kernel_sizes))
        for i in range(row.repeats):
            blocks.append(InvertedResidual(
                channels, out, row.stride if i == 0 else 1, expand_ratio=row.expand,
                kernel_size=row.kernel_sizes[0], dw_conv=f"mixconv:k={kernels}", se_ratio=row.se,
                act_layer=ACTIVATIONS[row.act],
                expand_groups=row.expand_groups, project_groups=row.project_groups,
            ))
            channels = out
    final_conv = ConvNormAct(channels, head, 1)
    return LeanNet(stem_layer, nn.Sequential(*blocks), ClassifierHead(head, num_classes, dropout),
                   in_chans, final_conv)


@register_model()
def mixnet_s(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
             conv_stem: bool = False, small_input: bool = False) -> LeanNet:
    """MixNet-S: 4,134,606 parameters, 239.2M MACs at 224x224."""
    return mixnet(MIXNET_S, 16, 1.0, num_classes, in_chans, conv, conv_stem, small_input)


@register_model()
def mixnet_m(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
             conv_stem: bool = False, small_input: bool = False) -> LeanNet:
    """MixNet-M: 5,014,382 parameters, 339.2M MACs at 224x224."""
    return mixnet(MIXNET_M, 24, 1.0, num_classes, in_chans, conv, conv_stem, small_input,
                  dropout=0.25)


@register_model()
def mixnet_l(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
             conv_stem: bool = False, small_input: bool = False) -> LeanNet:
    """MixNet-L (MixNet-M at width 1.3): 7,329,252 parameters, 555.3M MACs at 224x224."""
    return mixnet(MIXNET_M, 24, 1.3, num_classes, in_chans, conv, conv_stem, small_input,
                  dropout=0.25)
