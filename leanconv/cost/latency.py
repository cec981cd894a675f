"""Latency by replay: a module is timed alone, on a fresh input of the shape it received
during capture, with ``torch.utils.benchmark`` (explicit threads, warm-up, CUDA
synchronisation), never by timing inside hooks (which would time the Python around it and
serialise the GPU)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.utils import benchmark

WARMUP_RUNS = 3
BLOCKS = 10  # timed blocks per measurement (MIN_BLOCKS of one call each when a call is slow)
MIN_BLOCKS = 3


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, then restore the setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def median_iqr(values: Sequence[float]) -> tuple[float, float]:
    """Median and interquartile range of repeated measurements."""
    q1, median, q3 = torch.quantile(torch.tensor(values, dtype=torch.float64),
                                    torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return median.item(), (q3 - q1).item()


def make_inputs(shapes: list[tuple[int, ...]], device: str, dtype: torch.dtype,
                channels_last: bool) -> list[torch.Tensor]:
    """Random inputs of the captured shapes (4-d ones channels_last when asked)."""
    inputs = []
    for shape in shapes:
        x = torch.randn(shape, device=device, dtype=dtype)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        inputs.append(x)
    return inputs


def measure(module: nn.Module, inputs: list[torch.Tensor], threads: int,
            min_run_time: float) -> tuple[float, float]:
    """Median and interquartile range of ``module(*inputs)`` in milliseconds, over ``BLOCKS``
    timed blocks of equal call counts that together take about ``min_run_time`` seconds
    (at least ``MIN_BLOCKS`` calls when one call takes longer than that).

    The block size comes from one timed call after the warm-up (``blocked_autorange`` sizes
    blocks in powers of ten and ran a 0.1 ms layer for 0.27 s when asked for 0.02 s)."""
    with torch.inference_mode():
        for _ in range(WARMUP_RUNS):
            module(*inputs)
        if inputs and inputs[0].is_cuda:
            torch.cuda.synchronize()
        timer = benchmark.Timer(stmt="module(*inputs)",
                                globals={"module": module, "inputs": inputs},
                                num_threads=threads)
        once = max(timer.timeit(1).median, 1e-9)
        blocks = min(BLOCKS, max(MIN_BLOCKS, round(min_run_time / once)))
        number = max(1, round(min_run_time / blocks / once))
        times = [timer.timeit(number).median for _ in range(blocks)]
    median, iqr = median_iqr(times)
    return median * 1e3, iqr * 1e3


def measure_side_by_side(models: dict[str, nn.Module], input_shape: tuple[int, ...],
                         device: str = "cpu", dtype: torch.dtype = torch.float32,
                         channels_last: bool = False, threads: int = 1, rounds: int = 5,
                         min_run_time: float = 0.1) -> dict[str, tuple[float, float]]:
    """Median and IQR latency (ms) of each model, measured in interleaved rounds (every model
    once per round) so that drift on a shared machine hits them all alike."""
    inputs = make_inputs([tuple(input_shape)], device, dtype, channels_last)
    prepared = {}
    for name, model in models.items():
        model = model.to(device=device, dtype=dtype).eval()
        prepared[name] = model.to(memory_format=torch.channels_last) if channels_last else model
    samples: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in prepared.items():
            samples[name].append(measure(model, inputs, threads, min_run_time)[0])
    return {name: median_iqr(values) for name, values in samples.items()}
