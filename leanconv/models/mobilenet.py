"""MobileNet v1 and v2.

A. G. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv:1704.04861, 2017; M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018, arXiv:1801.04381.

v1: a 3x3 stem, then 13 depthwise-separable layers (3x3 depthwise -> BN-ReLU -> 1x1
pointwise -> BN-ReLU); the width multiplier scales every layer's channels (rounded to 8), the
resolution multiplier is just the input size. v2: inverted residuals with linear
bottlenecks, as torchvision builds it (ReLU6, final 1x1 conv to 1280 channels).

Their KxK convs are all depthwise except the stem, so ``conv`` only acts with
``conv_stem=True``; ``dw_conv`` swaps the depthwise convs (e.g. ``'mixconv:k=3.5.7'``).
"""

from __future__ import annotations

from torch import nn

from leanconv.blocks.conv_norm_act import ConvNormAct
from leanconv.blocks.inverted_residual import InvertedResidual
from leanconv.models.base import ClassifierHead, LeanNet, check_width, make_divisible
from leanconv.models.registry import register_model

# (out channels, stride) of the 13 depthwise-separable layers of MobileNet v1
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
             (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
# (expansion t, out channels c, repeats n, first stride s) of MobileNet v2
V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v1(width: float = 1.0, num_classes: int = 1000, in_chans: int = 3,
                 conv: str | None = None, conv_stem: bool = False, small_input: bool = False,
                 dw_conv: str = "depthwise") -> LeanNet:
    """MobileNet v1 at any width multiplier."""
    width = check_width("mobilenet_v1", width)
    channels = make_divisible(32 * width)
    stem_conv = (conv or "standard") if conv_stem else "standard"
    stem = ConvNormAct(in_chans, channels, 3, 1 if small_input else 2, conv=stem_conv)
    blocks = []
    for out, stride in V1_LAYERS:
        out = make_divisible(out * width)
        blocks.append(nn.Sequential(ConvNormAct(channels, channels, 3, stride, conv=dw_conv),
                                    ConvNormAct(channels, out, 1)))
        channels = out
    return LeanNet(stem, nn.Sequential(*blocks), ClassifierHead(channels, num_classes), in_chans)


def mobilenet_v2(width: float = 1.0, num_classes: int = 1000, in_chans: int = 3,
                 conv: str | None = None, conv_stem: bool = False, small_input: bool = False,
                 dw_conv: str = "depthwise", dropout: float = 0.2) -> LeanNet:
    """MobileNet v2 at any width multiplier (torchvision's channel rounding)."""
    width = check_width("mobilenet_v2", width)
    channels = make_divisible(32 * width)
    stem_conv = (conv or "standard") if conv_stem else "standard"
    stem = ConvNormAct(in_chans, channels, 3, 1 if small_input else 2, conv=stem_conv,
                       act_layer=nn.ReLU6)
    stages = []
    for t, c, n, s in V2_SETTINGS:
        out = make_divisible(c * width)
        blocks = []
        for i in range(n):
            blocks.append(InvertedResidual(channels, out, s if i == 0 else 1, expand_ratio=t,
                                           dw_conv=dw_conv))
            channels = out
        stages.append(nn.Sequential(*blocks))
    last = make_divisible(1280 * max(1.0, width))
    final_conv = ConvNormAct(channels, last, 1, act_layer=nn.ReLU6)
    return LeanNet(stem, nn.Sequential(*stages), ClassifierHead(last, num_classes, dropout),
                   in_chans, final_conv)


@register_model()
def mobilenet_v1_100(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise") -> LeanNet:
    """MobileNet v1, width 1.0."""
    return mobilenet_v1(1.0, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def mobilenet_v1_075(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise") -> LeanNet:
    """MobileNet v1, width 0.75."""
    return mobilenet_v1(0.75, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def mobilenet_v1_050(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise") -> LeanNet:
    """MobileNet v1, width 0.5."""
    return mobilenet_v1(0.5, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def mobilenet_v1_025(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                     conv_stem: bool = False, small_input: bool = False,
                     dw_conv: str = "depthwise") -> LeanNet:
    """MobileNet v1, width 0.25."""
    return mobilenet_v1(0.25, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def mobilenet_v2_100(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                      conv_stem: bool = False, small_input: bool = False,
                      dw_conv: str = "depthwise") -> LeanNet:
    """MobileNet v2 1.0: 3,504,872 parameters, 300.8M MACs at 224x224."""
    return mobilenet_v2(1.0, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)


@register_model()
def mobilenet_v2_140(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
                      conv_stem: bool = False, small_input: bool = False,
                      dw_conv: str = "depthwise") -> LeanNet:
    """MobileNet v2 1.4: 6,108,776 parameters, 582.2M MACs at 224x224."""
    return mobilenet_v2(1.4, num_classes, in_chans, conv, conv_stem, small_input, dw_conv)
