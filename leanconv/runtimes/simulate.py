"""A precision's rounding, simulated in PyTorch: what a layer run in ``int8`` or ``bf16``
does to its outputs, so a search can weigh it against the layer's other choices without
building an artifact per choice.

``int8`` follows the quantizers leanconv deploys with (onnxruntime's and NNCF's defaults
for CPUs): each conv's and linear's weights rounded per output channel, symmetric,

    w_q = clamp(round(w / s_c), -127, 127) s_c,   s_c = max |w_c| / 127,

and the layer's input per tensor, asymmetric, over the range it takes on calibration images,

    x_q = (clamp(round(x / s) + z, 0, 255) - z) s,   s = (max x - min x) / 255.

(B. Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018, arXiv:1712.05877.) ``bf16`` rounds the weights
and the input to bfloat16. The rounding of the layer's output by the next quantized layer is
that layer's own input rounding."""

from __future__ import annotations

import copy

import torch
from torch import nn

SIMULATED = ("int8", "bf16")


class SimulatedPrecision(nn.Module):
    """``module`` (weights already rounded) with its input rounded (module docstring)."""

    def __init__(self, module: nn.Module, precision: str, scale: float = 1.0,
                 zero_point: int = 0) -> None:
        super().__init__()
        self.module, self.precision = module, precision
        self.scale, self.zero_point = scale, zero_point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision == "bf16":
            return self.module(x.to(torch.bfloat16).float())
        return self.module(torch.fake_quantize_per_tensor_affine(
            x, self.scale, self.zero_point, 0, 255))


def _round_weights(module: nn.Module, precision: str) -> None:
    for layer in module.modules():
        if not isinstance(layer, nn.Conv2d | nn.Linear):
            continue
        w = layer.weight.data
        if precision == "bf16":
            layer.weight.data = w.to(torch.bfloat16).float()
            continue
        scales = (w.abs().flatten(1).amax(dim=1) / 127).clamp_min(1e-12).float()
        layer.weight.data = torch.fake_quantize_per_channel_affine(
            w, scales, torch.zeros_like(scales, dtype=torch.int32), 0, -127, 127)


def simulated(module: nn.Module, precision: str, inputs: torch.Tensor) -> SimulatedPrecision:
    """A copy of ``module`` run in ``precision`` (one of :data:`SIMULATED`), its input range
    taken from ``inputs`` (what the layer receives on calibration images)."""
    if precision not in SIMULATED:
        raise ValueError(f"simulated: precision={precision!r} is invalid; valid: "
                         f"{', '.join(SIMULATED)}")
    copied = copy.deepcopy(module)
    _round_weights(copied, precision)
    if precision == "bf16":
        return SimulatedPrecision(copied, precision)
    low, high = min(inputs.min().item(), 0.0), max(inputs.max().item(), 0.0)
    scale = max((high - low) / 255, 1e-12)
    zero_point = int(min(255, max(0, round(-low / scale))))
    return SimulatedPrecision(copied, precision, scale, zero_point)
