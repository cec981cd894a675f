"""``leanconv bench ops``: each operator against the kernel it replaces, in one process.

For every configuration (batch, layout NCHW / channels_last, inference / training step) all
cases are built on the same input shape and timed in interleaved rounds with
``torch.utils.benchmark`` (explicit thread count, warm-up, median and IQR). Each row shows the
time, the speedup over its baseline, the analytic FLOPs reduction (baseline MACs / operator
MACs, from :func:`leanconv.profile`), the realization (speedup / FLOPs reduction: 1.0 means the
whole saving became time) and the roofline bound from the machine's measured ceilings
(:mod:`leanconv.bench.roofline`): ``bound / time`` is the fraction of the hardware's limit
reached. The bandwidth ceiling is the larger of a large copy's and the same-size ``clone``
measured in the same rounds (small tensors stay in cache and copy faster than DRAM allows).
PyTorch's own depthwise conv (``depthwise3x3 torch``) is the baseline of the depthwise and
MixConv rows; leanconv's ``DepthwiseConv2d`` and ``MixConv2d`` run its C++ kernels where they
apply (:mod:`leanconv.kernels`). A training step is forward + backward; its bound
counts 3x the forward's FLOPs and bytes (the usual estimate: the backward computes two
products of the forward's size).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils import benchmark

from leanconv.bench.roofline import Ceilings
from leanconv.cost.latency import median_iqr, torch_threads
from leanconv.cost.profile import profile
from leanconv.deploy.folded_hetconv import FoldedHetConv2d
from leanconv.deploy.single_kernel import single_kernel_mixconv
from leanconv.ops.channel_shuffle import ChannelShuffle
from leanconv.ops.comp_conv import CompConv2d
from leanconv.ops.depthwise_conv import DepthwiseConv2d
from leanconv.ops.het_conv import HetConv2d
from leanconv.ops.mixed_conv import MixConv2d

CHANNELS, SIZE = 256, 28
MIXCONV_KERNELS = (3, 5, 7, 9)


class Clone(nn.Module):
    """``x.clone()``: one read and one write of the tensor, the bandwidth baseline."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def _timm_mixconv() -> nn.Module | None:
    try:
        from timm.layers import MixedConv2d
    except ImportError:
        return None
    return MixedConv2d(CHANNELS, CHANNELS, list(MIXCONV_KERNELS), depthwise=True)


@dataclass(frozen=True)
class OpCase:
    """One operator on a (B, 256, 28, 28) input and the case it is compared with."""

    name: str
    baseline: str | None
    build: Callable[[], nn.Module | None]
    inference_only: bool = False


CASES: tuple[OpCase, ...] = (
    OpCase("conv3x3", None, lambda: nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False)),
    OpCase("hetconv:p=4", "conv3x3", lambda: HetConv2d(CHANNELS, CHANNELS, 3, p=4)),
    OpCase("hetconv:p=4 folded", "conv3x3",
           lambda: FoldedHetConv2d(HetConv2d(CHANNELS, CHANNELS, 3, p=4)), True),
    OpCase("hetconv:p=8", "conv3x3", lambda: HetConv2d(CHANNELS, CHANNELS, 3, p=8)),
    OpCase("compconv:c0=128", "conv3x3", lambda: CompConv2d(CHANNELS, CHANNELS, 3, c0=128)),
    OpCase("depthwise3x3 torch", None,
           lambda: nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, groups=CHANNELS, bias=False)),
    OpCase("depthwise3x3", "depthwise3x3 torch", lambda: DepthwiseConv2d(CHANNELS, CHANNELS, 3)),
    OpCase("mixconv:k=3.5.7.9", "depthwise3x3 torch",
           lambda: MixConv2d(CHANNELS, CHANNELS, MIXCONV_KERNELS)),
    OpCase("mixconv single kernel", "depthwise3x3 torch",
           lambda: single_kernel_mixconv(MixConv2d(CHANNELS, CHANNELS, MIXCONV_KERNELS))),
    OpCase("timm MixedConv2d 3.5.7.9", "depthwise3x3 torch", _timm_mixconv),
    OpCase("clone", None, Clone),
    OpCase("channel_shuffle:g=4", "clone", lambda: ChannelShuffle(4)),
)


def _callable(module: nn.Module, x: torch.Tensor, training: bool) -> Callable[[], object]:
    if not training:
        def infer() -> object:
            with torch.no_grad():
                return module(x)
        return infer
    x = x.detach().requires_grad_(True)
    params = [p for p in module.parameters() if p.requires_grad]
    grad = torch.ones_like(module(x))

    def step() -> None:
        for param in params:
            param.grad = None
        x.grad = None
        module(x).backward(grad)

    return step


def _measure(fn: Callable[[], object], threads: int, min_run_time: float) -> float:
    fn()
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def _costs(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Analytic MACs, executed FLOPs and bytes moved by one forward pass."""
    totals = profile(copy.deepcopy(module), shape).totals
    return totals["macs_analytic"], totals["flops"], totals["memory_access_bytes"]


def bench_ops(ceilings: Ceilings, *, threads: int, batches: tuple[int, ...] = (1, 8, 32),
              layouts: tuple[str, ...] = ("nchw", "channels_last"),
              modes: tuple[str, ...] = ("inference", "training"), rounds: int = 3,
              min_run_time: float = 0.1) -> list[dict[str, object]]:
    """One row per (case, batch, layout, mode); see the module docstring for the columns."""
    rows = []
    with torch_threads(threads):
        for batch in batches:
            shape = (batch, CHANNELS, SIZE, SIZE)
            built = {case.name: (case, case.build()) for case in CASES}
            built = {name: pair for name, pair in built.items() if pair[1] is not None}
            costs = {name: _costs(module, shape) for name, (_, module) in built.items()}
            for layout in layouts:
                for mode in modes:
                    rows += _configuration(built, costs, shape, layout, mode, ceilings,
                                           threads, rounds, min_run_time)
    return rows


def _configuration(built: dict[str, tuple[OpCase, nn.Module]],
                   costs: dict[str, tuple[int, int, int]], shape: tuple[int, ...], layout: str,
                   mode: str, ceilings: Ceilings, threads: int, rounds: int,
                   min_run_time: float) -> list[dict[str, object]]:
    training = mode == "training"
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(shape).contiguous(memory_format=memory_format)
    fns = {}
    for name, (case, module) in built.items():
        if training and case.inference_only:
            continue
        module = copy.deepcopy(module).to(memory_format=memory_format).train(training)
        fns[name] = _callable(module, x, training)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(_measure(fn, threads, min_run_time))
    stats = {name: median_iqr(values) for name, values in samples.items()}
    factor = 3 if training else 1
    # The copy ceiling that applies is that of a tensor this size (it may sit in cache): the
    # clone case measured in these rounds, when it is faster than the large-copy ceiling.
    clone_ms = stats.get("clone", (0.0,))[0]
    if clone_ms:
        same_size = factor * costs["clone"][2] / (clone_ms * 1e-3) / 1e9
        ceilings = Ceilings(ceilings.gflops, max(ceilings.gbps, same_size))
    rows = []
    for name, (ms, iqr) in stats.items():
        case = built[name][0]
        macs, flops, nbytes = costs[name]
        bound = ceilings.bound_ms(factor * flops, factor * nbytes)
        row: dict[str, object] = {
            "case": name, "baseline": case.baseline, "batch": shape[0], "layout": layout,
            "mode": mode, "ms": round(ms, 4), "iqr_ms": round(iqr, 4),
            "bound_ms": round(bound, 4), "of_bound": round(bound / ms, 3),
            "gbps_ceiling": round(ceilings.gbps, 2)}
        if case.baseline in stats:
            base_ms, base_macs = stats[case.baseline][0], costs[case.baseline][0]
            row["speedup"] = round(base_ms / ms, 3)
            if macs and base_macs:
                row["flops_reduction"] = round(base_macs / macs, 3)
                row["realization"] = round(base_ms / ms / (base_macs / macs), 3)
        rows.append(row)
    return rows
