"""VGG-16 with batch norm: stacks of 3x3 convs instead of large kernels.

K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, arXiv:1409.1556.

``vgg16`` is torchvision's ``vgg16_bn`` (conv biases, 7x7 pooled 4096-4096 classifier).
``vgg16_cifar`` is the HetConv paper's CIFAR baseline: the same 13 convs, a 512-512-classes
classifier on the globally pooled features. Small inputs use ceil-mode max-pools, so 28x28
and 32x32 both reach 1x1 after the fifth pool.

``conv`` replaces every 3x3 conv but the first, which is the stem (``conv_stem=True``).
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv.blocks.conv_norm_act import ConvNormAct
from leanconv.models.base import LeanNet
from leanconv.models.registry import register_model

VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class MLPHead(nn.Module):
    """Adaptive average pool to ``pool_size`` -> flatten -> (linear, ReLU, dropout)* -> fc."""

    def __init__(self, in_features: int, hidden: int, layers: int, num_classes: int,
                 pool_size: int, dropout: float) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.flatten = nn.Flatten(1)
        mlp: list[nn.Module] = []
        width = in_features * pool_size * pool_size
        for _ in range(layers):
            mlp += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        self.mlp = nn.Sequential(*mlp)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.mlp(self.flatten(self.pool(x)))
        return x if pre_logits else self.fc(x)


def _vgg16(in_chans: int, conv: str | None, conv_stem: bool, bias: bool, ceil_pool: bool,
           head: nn.Module) -> LeanNet:
    spatial = conv or "standard"
    stem = ConvNormAct(in_chans, 64, 3, 1, conv=spatial if conv_stem else "standard", bias=bias)
    stages, width = [], 64
    for i, widths in enumerate(VGG16_STAGES):
        layers: list[nn.Module] = []
        for out in widths[1:] if i == 0 else widths:
            layers.append(ConvNormAct(width, out, 3, 1, conv=spatial, bias=bias))
            width = out
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=ceil_pool))
        stages.append(nn.Sequential(*layers))
    return LeanNet(stem, nn.Sequential(*stages), head, in_chans)


@register_model()
def vgg16(*, num_classes: int = 1000, in_chans: int = 3, conv: str | None = None,
          conv_stem: bool = False, small_input: bool = False) -> LeanNet:
    """VGG-16-BN: 138,365,992 parameters, 15.47G MACs at 224x224."""
    head = MLPHead(512, 4096, 2, num_classes, pool_size=7, dropout=0.5)
    return _vgg16(in_chans, conv, conv_stem, True, small_input, head)


@register_model(input_size=32)
def vgg16_cifar(*, num_classes: int = 10, in_chans: int = 3, conv: str | None = None,
                conv_stem: bool = False) -> LeanNet:
    """CIFAR VGG-16-BN (HetConv paper baseline): 313.7M MACs at 32x32."""
    head = MLPHead(512, 512, 1, num_classes, pool_size=1, dropout=0.5)
    return _vgg16(in_chans, conv, conv_stem, False, True, head)
