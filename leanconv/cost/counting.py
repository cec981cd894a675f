"""Parameter counts."""

from __future__ import annotations

from torch import nn


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"count_params: model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
