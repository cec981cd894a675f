"""The machine's ceilings, measured in the same run as the operators they bound.

* compute: a large fp32 matrix product, ``2 n^3`` FLOPs per call -> GFLOP/s;
* bandwidth: ``clone()`` of a tensor far larger than the caches, read + write -> GB/s.

An operator that executes ``F`` FLOPs and moves ``B`` bytes cannot run faster than
``max(F / peak_flops, B / peak_bandwidth)`` (the roofline bound); ``time / bound`` says how far
from the hardware's limit it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils import benchmark

MATMUL_N = 2048
COPY_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Ceilings:
    """Measured peak compute (GFLOP/s) and memory bandwidth (GB/s)."""

    gflops: float
    gbps: float

    def bound_ms(self, flops: float, nbytes: float) -> float:
        """The roofline lower bound on the time of ``flops`` FLOPs moving ``nbytes`` bytes."""
        return max(flops / (self.gflops * 1e9), nbytes / (self.gbps * 1e9)) * 1e3


def _median_s(stmt: str, env: dict[str, object], threads: int, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt, globals=env, num_threads=threads)
    timer.timeit(2)  # warm-up
    return timer.blocked_autorange(min_run_time=min_run_time).median


def measure_ceilings(threads: int, device: str = "cpu", min_run_time: float = 0.5) -> Ceilings:
    """Peak fp32 matmul throughput and copy bandwidth with ``threads`` threads."""
    a = torch.randn(MATMUL_N, MATMUL_N, device=device)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device)
    sync = "; torch.cuda.synchronize()" if device == "cuda" else ""
    matmul = _median_s(f"torch.mm(a, b){sync}", {"torch": torch, "a": a, "b": b}, threads,
                       min_run_time)
    x = torch.empty(COPY_BYTES // 4, device=device).normal_()
    copy = _median_s(f"x.clone(){sync}", {"torch": torch, "x": x}, threads, min_run_time)
    return Ceilings(2 * MATMUL_N**3 / matmul / 1e9, 2 * COPY_BYTES / copy / 1e9)
