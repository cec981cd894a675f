"""Artifacts timed side by side: each artifact's call takes turns with the others' in
millisecond blocks (:func:`leanconv.cost.latency.interleaved_samples`), so that drift on a
shared machine hits them alike, whatever runtime runs them. onnxruntime's threads do not
spin (they would steal the cores of whatever is timed next in the process); OpenVINO and
PyTorch are pinned to the same thread count."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from leanconv.cost.latency import SideBySide, interleaved_samples, torch_threads
from leanconv.runtimes.base import Artifact, get_runtime


def time_artifacts(artifacts: Mapping[str, Artifact], x: torch.Tensor, *, threads: int,
                   rounds: int = 5, min_run_time: float = 0.1) -> SideBySide:
    """Median and IQR latency (ms) of each artifact on ``x``, timed in turns about
    ``rounds x min_run_time`` seconds each (at least ``rounds`` rounds), and paired
    speed-ups (:meth:`SideBySide.speedup`)."""
    calls = {name: (artifact.runner(x), []) for name, artifact in artifacts.items()}
    with torch_threads(threads):
        samples = interleaved_samples(calls, threads, rounds * min_run_time, min_rounds=rounds)
    return SideBySide(samples)


def runtime_side_by_side(models: Mapping[str, nn.Module], input_shape: tuple[int, ...], *,
                         runtime: str, precision: str, threads: int,
                         calibration: torch.Tensor | None = None, channels_last: bool = False,
                         rounds: int = 5, min_run_time: float = 0.1,
                         owner: str = "runtime_side_by_side") -> SideBySide:
    """Each model of ``models`` (not changed) built in ``runtime`` at ``precision``
    (:meth:`Runtime.build`; int8 calibrated on ``calibration``, N x C x H x W images;
    ``channels_last``: PyTorch's memory format) and timed in turns on one random input
    (:func:`time_artifacts`): median and IQR ms of each, and paired speed-ups. ``owner``
    names the caller in the errors (an unknown or missing runtime, a precision it does not
    run here)."""
    entry = get_runtime(owner, runtime, precision)
    shape = tuple(input_shape)
    artifacts = {name: entry.build(model, shape, precision, threads=threads,
                                   calibration=calibration, channels_last=channels_last)
                 for name, model in models.items()}
    return time_artifacts(artifacts, torch.randn(shape), threads=threads, rounds=rounds,
                          min_run_time=min_run_time)
