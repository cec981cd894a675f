"""ResNets: ImageNet ResNet-18/34/50 as torchvision builds them, and the CIFAR ResNet-20/56
of the ResNet paper (3 stages of 16/32/64 channels and its parameter-free option-A
shortcuts).

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
arXiv:1512.03385.

``conv`` replaces every 3x3 conv inside the residual blocks; the stem (7x7, or 3x3 for CIFAR)
stays standard unless ``conv_stem=True``.
"""

from __future__ import annotations

from torch import nn

from leanconv.blocks.conv_norm_act import ConvNormAct
from leanconv.blocks.residual import BasicBlock, Bottleneck
from leanconv.models.base import ClassifierHead, LeanNet
from leanconv.models.registry import register_model


def _stages(block: str, depths: tuple[int, ...], widths: tuple[int, ...], in_channels: int,
            conv: str, shortcut: str = "projection") -> tuple[nn.Sequential, int]:
    stages = []
    for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        out = width * 4 if block == "bottleneck" else width
        blocks = []
        for j in range(depth):
            stride = 2 if i > 0 and j == 0 else 1
            if block == "bottleneck":
                blocks.append(Bottleneck(in_channels, out, stride, mid_channels=width, conv=conv,
                                         shortcut=shortcut))
            else:
                blocks.append(BasicBlock(in_channels, out, stride, conv=conv, shortcut=shortcut))
            in_channels = out
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), in_channels


def _imagenet_resnet(block: str, depths: tuple[int, ...], num_classes: int, in_chans: int,
                     conv: str | None, conv_stem: bool, small_input: bool) -> LeanNet:
    spatial = conv or "standard"
    stem = nn.Sequential(
        ConvNormAct(in_chans, 64, 7, 1 if small_input else 2,
                    conv=spatial if conv_stem else "standard"),
        nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1),
    )
    stages, width = _stages(block, depths, (64, 128, 256, 512), 64, spatial)
    return LeanNet(stem, stages, ClassifierHead(width, num_classes), in_chans)


def _cifar_resnet(depth: int, num_classes: int, in_chans: int, conv: str | None,
                  conv_stem: bool) -> LeanNet:
    n = (depth - 2) // 6
    spatial = conv or "standard"
    stem = ConvNormAct(in_chans, 16, 3, 1, conv=spatial if conv_stem else "standard")
    stages, width = _stages("basic", (n, n, n), (16, 32, 64), 16, spatial, shortcut="pad")
    return LeanNet(stem, stages, ClassifierHead(width, num_classes), in_chans)


@register_model()
def resnet18(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
             conv_stem: bool = False, small_input: bool = False) -> LeanNet:
    """ResNet-18: 11,689,512 parameters, 1.81G MACs at 224x224."""
    return _imagenet_resnet("basic", (2, 2, 2, 2), num_classes, in_chans, conv, conv_stem,
                            small_input)


@register_model()
def resnet34(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
             conv_stem: bool = False, small_input: bool = False) -> LeanNet:
    """ResNet-34: 21,797,672 parameters, 3.66G MACs at 224x224."""
    return _imagenet_resnet("basic", (3, 4, 6, 3), num_classes, in_chans, conv, conv_stem,
                            small_input)


@register_model()
def resnet50(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
             conv_stem: bool = False, small_input: bool = False) -> LeanNet:
    """ResNet-50 (bottleneck, stride on the 3x3): 25,557,032 parameters, 4.09G MACs."""
    return _imagenet_resnet("bottleneck", (3, 4, 6, 3), num_classes, in_chans, conv, conv_stem,
                            small_input)


@register_model(input_size=32)
def resnet20_cifar(*, num_classes: int = 10, in_chans: int = 3, conv: str | None = None,
                   conv_stem: bool = False) -> LeanNet:
    """CIFAR ResNet-20: 0.27M parameters, 41M MACs at 32x32."""
    return _cifar_resnet(20, num_classes, in_chans, conv, conv_stem)


@register_model(input_size=32)
def resnet56_cifar(*, num_classes: int = 10, in_chans: int = 3, conv: str | None = None,
                   conv_stem: bool = False) -> LeanNet:
    """CIFAR ResNet-56: 0.85M parameters, 125M MACs at 32x32."""
    return _cifar_resnet(56, num_classes, in_chans, conv, conv_stem)
