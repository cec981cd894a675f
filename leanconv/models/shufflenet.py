"""ShuffleNet v1 and v2.

X. Zhang, X. Zhou, M. Lin, J. Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural
Network for Mobile Devices", CVPR 2018, arXiv:1707.01083; N. Ma, X. Zhang, H.-T. Zheng, J. Sun,
"ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design", ECCV 2018,
arXiv:1807.11164.

v1: 3x3 stem (24 channels) and max-pool, three stages of 4/8/4 units of pointwise group
convs with a channel shuffle; stage widths per group count g from the paper's Table 1
(1.0x: g=1 144, g=2 200, g=3 240, g=4 272, g=8 384, doubling per stage). Other widths scale
them, rounded to a multiple of 4g (bottleneck = width / 4 divisible by g); the stem is
rounded to a multiple of g. The first unit of stage 2 has an ungrouped first 1x1.

v2: torchvision's ShuffleNet V2 (channel split, concat, shuffle; 1x1 conv to 1024/2048).

Their 3x3 convs are depthwise except the stem, so ``conv`` acts only with ``conv_stem=True``;
``dw_conv`` swaps the depthwise convs.
"""

from __future__ import annotations

from torch import nn

from leanconv.blocks.conv_norm_act import ConvNormAct
from leanconv.blocks.shuffle_unit import ShuffleUnitV1, ShuffleUnitV2
from leanconv.models.base import ClassifierHead, LeanNet, check_width
from leanconv.models.registry import register_model

V1_STAGE2 = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
V2_WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
             1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}
REPEATS = (4, 8, 4)


def _round_up(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def _stem(in_chans: int, out: int, conv: str | None, conv_stem: bool,
          small_input: bool) -> nn.Sequential:
    stem_conv = (conv or "standard") if conv_stem else "standard"
    return nn.Sequential(
        ConvNormAct(in_chans, out, 3, 1 if small_input else 2, conv=stem_conv),
        nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1),
    )


def shufflenet_v1(groups: int = 3, width: float = 1.0, num_classes: int = 1000,
                  in_chans: int = 3, conv: str | None = None, conv_stem: bool = False,
                  small_input: bool = False, dw_conv: str = "depthwise") -> LeanNet:
    """ShuffleNet v1 with ``groups`` in {1, 2, 3, 4, 8} at width multiplier ``width``."""
    if groups not in V1_STAGE2:
        raise ValueError(f"shufflenet_v1: groups={groups!r} is invalid; choose one of "
                         f"{sorted(V1_STAGE2)}")
    width = check_width("shufflenet_v1", width)
    channels = 24 if width == 1.0 else _round_up(24 * width, groups)
    stem = _stem(in_chans, channels, conv, conv_stem, small_input)
    stages = []
    for i, repeats in enumerate(REPEATS):
        out = _round_up(V1_STAGE2[groups] * 2**i * width, 4 * groups)
        units = []
        for j in range(repeats):
            units.append(ShuffleUnitV1(channels, out, 2 if j == 0 else 1, groups=groups,
                                       first_group_conv=(i, j) != (0, 0), conv=dw_conv))
            channels = out
        stages.append(nn.Sequential(*units))
    return LeanNet(stem, nn.Sequential(*stages), ClassifierHead(channels, num_classes), in_chans)


def shufflenet_v2(width: float = 1.0, num_classes: int = 1000, in_chans: int = 3,
                  conv: str | None = None, conv_stem: bool = False, small_input: bool = False,
                  dw_conv: str = "depthwise") -> LeanNet:
    """ShuffleNet v2 at one of the published widths 0.5, 1.0, 1.5, 2.0."""
    if width not in V2_WIDTHS:
        raise ValueError(f"shufflenet_v2: width={width!r} is invalid; choose one of "
                         f"{sorted(V2_WIDTHS)}")
    *stage_widths, last = V2_WIDTHS[width]
    channels = 24
    stem = _stem(in_chans, channels, conv, conv_stem, small_input)
    stages = []
    for repeats, out in zip(REPEATS, stage_widths, strict=True):
        units = []
        for j in range(repeats):
            units.append(ShuffleUnitV2(channels, out, 2 if j == 0 else 1, conv=dw_conv))
            channels = out
        stages.append(nn.Sequential(*units))
    final_conv = ConvNormAct(channels, last, 1)
    return LeanNet(stem, nn.Sequential(*stages), ClassifierHead(last, num_classes), in_chans,
                   final_conv)


@register_model()
def shufflenet_v1_g1(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise", width: float = 1.0) -> LeanNet:
    """ShuffleNet v1 with 1 group, 1.0x (``width=0.5`` for 0.5x)."""
    return shufflenet_v1(1, width, num_classes, in_chans, conv, conv_stem, small_input,
                         dw_conv)


@register_model()
def shufflenet_v1_g2(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise", width: float = 1.0) -> LeanNet:
    """ShuffleNet v1 with 2 groups, 1.0x (``width=0.5`` for 0.5x)."""
    return shufflenet_v1(2, width, num_classes, in_chans, conv, conv_stem, small_input,
                         dw_conv)


@register_model()
def shufflenet_v1_g3(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise", width: float = 1.0) -> LeanNet:
    """ShuffleNet v1 with 3 groups, 1.0x (``width=0.5`` for 0.5x)."""
    return shufflenet_v1(3, width, num_classes, in_chans, conv, conv_stem, small_input,
                         dw_conv)


@register_model()
def shufflenet_v1_g4(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise", width: float = 1.0) -> LeanNet:
    """ShuffleNet v1 with 4 groups, 1.0x (``width=0.5`` for 0.5x)."""
    return shufflenet_v1(4, width, num_classes, in_chans, conv, conv_stem, small_input,
                         dw_conv)


@register_model()
def shufflenet_v1_g8(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise", width: float = 1.0) -> LeanNet:
    """ShuffleNet v1 with 8 groups, 1.0x (``width=0.5`` for 0.5x)."""
    return shufflenet_v1(8, width, num_classes, in_chans, conv, conv_stem, small_input,
                         dw_conv)


@register_model()
def shufflenet_v2_x0_5(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                       conv_stem: bool = False, small_input: bool = False,
                       dw_conv: str = "depthwise") -> LeanNet:
    """ShuffleNet v2 0.5x."""
    return shufflenet_v2(0.5, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def shufflenet_v2_x1_0(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                       conv_stem: bool = False, small_input: bool = False,
                       dw_conv: str = "depthwise") -> LeanNet:
    """ShuffleNet v2 1.0x."""
    return shufflenet_v2(1.0, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def shufflenet_v2_x1_5(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                       conv_stem: bool = False, small_input: bool = False,
                       dw_conv: str = "depthwise") -> LeanNet:
    """ShuffleNet v2 1.5x."""
    return shufflenet_v2(1.5, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def shufflenet_v2_x2_0(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                       conv_stem: bool = False, small_input: bool = False,
                       dw_conv: str = "depthwise") -> LeanNet:
    """ShuffleNet v2 2.0x."""
    return shufflenet_v2(2.0, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)
