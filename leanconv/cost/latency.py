"""Latency by replay: a module is timed alone, on a fresh input of the shape it received
during capture, with ``torch.utils.benchmark`` (explicit threads, warm-up, CUDA
synchronisation), never by timing inside hooks (which would time the Python around it and
serialise the GPU)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.utils import benchmark

WARMUP_RUNS = 3
BLOCKS = 10  # timed blocks per measurement (MIN_BLOCKS of one call each when a call is slow)
MIN_BLOCKS = 3
BLOCK_SECONDS = 0.005  # one turn of a model in side-by-side timing (at least one call)
MIN_ROUNDS, MAX_ROUNDS = 5, 400


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


class SideBySide(dict[str, tuple[float, float]]):
    """Median and interquartile range (ms per call) of each model timed side by side, with
    the per-round samples behind them (``samples[name][r]``: round ``r``'s block)."""

    def __init__(self, samples: dict[str, list[float]]) -> None:
        super().__init__({name: median_iqr(values) for name, values in samples.items()})
        self.samples = samples

    def speedup(self, name: str, reference: str) -> float:
        """``reference``'s latency over ``name``'s: the median of the per-round ratios (a
        round's two blocks ran milliseconds apart, so drift cancels out of each ratio)."""
        for key in (name, reference):
            if key not in self.samples:
                raise KeyError(f"speedup: {key!r} was not measured; measured: "
                               f"{sorted(self.samples)}")
        ratios = [r / n for r, n in zip(self.samples[reference], self.samples[name],
                                        strict=True)]
        return median_iqr(ratios)[0]


def interleaved_samples(calls: Mapping[str, tuple[Callable[..., object], list[torch.Tensor]]],
                        threads: int, seconds: float, min_rounds: int = MIN_ROUNDS
                        ) -> dict[str, list[float]]:
    """Time ``module(*inputs)`` of every entry of ``calls`` (a module, or any call such as a
    runtime artifact's :meth:`~leanconv.runtimes.Artifact.runner` with no inputs) in short
    blocks that take turns:
    each round times one block of each entry (the order reversed every other round), a block
    is about :data:`BLOCK_SECONDS` of calls (at least one), and there are enough rounds for
    each entry to be timed about ``seconds`` in all (at least ``min_rounds``). Returns the
    per-call time (ms) of each round's block, per entry.

    The load on a shared machine moves on a timescale of seconds (consecutive 0.2 s medians
    of one model ranged 11.9-16.3 ms here), so entries compared through blocks timed a
    second apart differ by the drift; blocks milliseconds apart share it."""
    timers, numbers, block = {}, {}, 0.0
    with torch.inference_mode():
        for name, (module, inputs) in calls.items():
            for _ in range(WARMUP_RUNS):
                module(*inputs)
            if inputs and inputs[0].is_cuda:
                torch.cuda.synchronize()
            timers[name] = benchmark.Timer(stmt="module(*inputs)",
                                           globals={"module": module, "inputs": inputs},
                                           num_threads=threads)
            once = max(timers[name].timeit(1).median, 1e-9)
            numbers[name] = max(1, round(BLOCK_SECONDS / once))
            block = max(block, numbers[name] * once)
        rounds = max(min_rounds, min(MAX_ROUNDS, round(seconds / max(block, 1e-9))))
        samples: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls)
        for r in range(rounds):
            for name in order if r % 2 == 0 else reversed(order):
                samples[name].append(timers[name].timeit(numbers[name]).median * 1e3)
    return samples


def measure_side_by_side(models: dict[str, nn.Module], input_shape: tuple[int, ...],
                         device: str = "cpu", dtype: torch.dtype = torch.float32,
                         channels_last: bool = False, threads: int = 1, rounds: int = 5,
                         min_run_time: float = 0.1) -> SideBySide:
    """Each model timed about ``rounds x min_run_time`` seconds on one random input, in
    blocks that take turns (:func:`interleaved_samples`, at least ``rounds`` rounds), so
    that drift on a shared machine hits them all alike."""
    inputs = make_inputs([tuple(input_shape)], device, dtype, channels_last)
    calls = {}
    for name, model in models.items():
        model = model.to(device=device, dtype=dtype).eval()
        model = model.to(memory_format=torch.channels_last) if channels_last else model
        calls[name] = (model, inputs)
    return SideBySide(interleaved_samples(calls, threads, rounds * min_run_time,
                                          min_rounds=rounds))
