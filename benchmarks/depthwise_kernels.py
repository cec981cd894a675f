"""leanconv's C++ depthwise / MixConv kernel against PyTorch's, shape by shape (a benchmark).

    .venv/bin/python benchmarks/depthwise_kernels.py [--threads 2] [--rounds 3]

For MobileNet / MixNet-like shapes, NCHW and channels_last, times in one process and
interleaved rounds: PyTorch's kernels (one ``F.conv2d`` for a depthwise conv; split + conv per
group + concat for a MixConv, as timm does) and leanconv's kernel called directly (whatever
the selection rule in :func:`leanconv.kernels.native_applies` would pick). This is the
measurement behind that rule. Writes ``benchmarks/results/depthwise_kernels.json``.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn

from leanconv.cost.latency import measure_side_by_side
from leanconv.io import atomic_write_text
from leanconv.kernels import native, reference_mixed_depthwise_conv2d
from leanconv.machine import machine_info
from leanconv.ops import split_channels

# (batch, channels, size, kernel sizes)
SHAPES = (
    (1, 32, 112, (3,)), (1, 144, 56, (3,)), (8, 256, 28, (3,)), (1, 576, 14, (3,)),
    (32, 192, 28, (3,)), (32, 960, 7, (3,)),
    (8, 256, 28, (3, 5, 7, 9)), (1, 480, 7, (3, 5, 7, 9)), (32, 480, 7, (3, 5, 7, 9)),
    (32, 240, 14, (3, 5, 7)),
)


class _Depthwise(nn.Module):
    def __init__(self, channels: int, kernel_sizes: tuple[int, ...], leanconv: bool) -> None:
        super().__init__()
        self.weights = nn.ParameterList(
            torch.randn(c, 1, k, k) for c, k in
            zip(split_channels(channels, len(kernel_sizes)), kernel_sizes, strict=True))
        self.leanconv = leanconv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = list(self.weights)
        if self.leanconv:
            return torch.ops.leanconv.mixed_depthwise_conv2d(x, weights, None)
        return reference_mixed_depthwise_conv2d(x, weights)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/depthwise_kernels.json")
    args = parser.parse_args()
    if native() is None:
        parser.error("the C++ kernels are not available here (see the warning above)")
    rows = []
    for batch, channels, size, kernels in SHAPES:
        for layout in ("nchw", "channels_last"):
            pytorch = _Depthwise(channels, kernels, leanconv=False)
            ours = _Depthwise(channels, kernels, leanconv=True)
            ours.load_state_dict(pytorch.state_dict())
            times = measure_side_by_side(
                {"pytorch": pytorch, "leanconv": ours}, (batch, channels, size, size),
                channels_last=layout == "channels_last", threads=args.threads,
                rounds=args.rounds)
            row = {"shape": [batch, channels, size, size], "kernel_sizes": list(kernels),
                   "layout": layout, "pytorch_ms": round(times["pytorch"][0], 4),
                   "leanconv_ms": round(times["leanconv"][0], 4),
                   "speedup": round(times["pytorch"][0] / times["leanconv"][0], 2)}
            rows.append(row)
            print(json.dumps(row))
    record = {"machine": machine_info(args.threads), "results": rows}
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
