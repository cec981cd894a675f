"""Parameter and MAC counts of a whole model.

MACs are what ``torch.utils.flop_counter.FlopCounterMode`` counts (convolutions, matmuls,
linear layers), halved: the convention the model zoo's published sizes use. The model is
copied to the meta device, so counting allocates no activations and takes no real compute.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on an input of ``input_shape`` (batch first)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"count_macs: model must be an nn.Module, got {type(model).__name__}")
    if not input_shape or any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise ValueError(f"count_macs: input_shape={input_shape!r} is invalid; expected "
                         f"positive ints, e.g. (1, 3, 224, 224)")
    meta_model = copy.deepcopy(model).to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_model(torch.empty(input_shape, device="meta"))
    return counter.get_total_flops() // 2
