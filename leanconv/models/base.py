"""What every zoo model shares: ``stem -> stages -> final_conv -> head``.

``forward_features`` runs the stem, the stages and the optional final 1x1 conv;
``forward_head`` pools and classifies. Models accept NCHW or channels_last input.
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv._validate import check_input, check_int


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never more than 10% below it
    (the channel rounding of MobileNet v2 and MixNet)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def check_width(owner: str, width: object) -> float:
    """A width multiplier: a number > 0."""
    if isinstance(width, bool) or not isinstance(width, int | float) or width <= 0:
        raise ValueError(f"{owner}: width={width!r} is invalid; expected a number > 0, e.g. 0.5")
    return float(width)


class ClassifierHead(nn.Module):
    """Global average pool -> dropout -> linear."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        check_int("ClassifierHead", "num_classes", num_classes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(self.flatten(self.pool(x)))
        return x if pre_logits else self.fc(x)


class LeanNet(nn.Module):
    """A classification network with a readable ``stem / stages / final_conv / head``."""

    def __init__(
        self,
        stem: nn.Module,
        stages: nn.Sequential,
        head: nn.Module,
        in_chans: int,
        final_conv: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.stem = stem
        self.stages = stages
        self.final_conv = final_conv if final_conv is not None else nn.Identity()
        self.head = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, self.in_chans)
        return self.final_conv(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
