"""Deployment latency: models folded as they are deployed (:func:`leanconv.fold`: BatchNorm
into the convs, each operator in its fastest measured form), then timed side by side in
short blocks that take turns (:func:`leanconv.cost.latency.measure_side_by_side`). What
``leanconv compare``, ``leanconv cost --latency`` and ``leanconv shrink`` report, so that a
latency column is what a user deploys, not eager-mode overhead of training-time structure."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from leanconv.cost.latency import SideBySide, measure_side_by_side
from leanconv.deploy.fold import fold

FOLDED_NOTE = "latency of the folded models (BatchNorm folded, fastest forms), side by side"


def folded_side_by_side(models: dict[str, nn.Module], input_shape: tuple[int, ...], *,
                        threads: int, channels_last: bool = False, device: str = "cpu",
                        rounds: int = 5, min_run_time: float = 0.1
                        ) -> SideBySide:
    """Median and IQR latency (ms) of each model of ``models`` folded on ``input_shape``
    (the models are not changed), and paired speed-ups (:meth:`SideBySide.speedup`)."""
    folded = {name: fold(model.to(device), tuple(input_shape), channels_last=channels_last,
                         threads=threads)[0] for name, model in models.items()}
    return measure_side_by_side(folded, tuple(input_shape), device,
                                channels_last=channels_last, threads=threads, rounds=rounds,
                                min_run_time=min_run_time)


@dataclass(frozen=True)
class Speedup:
    """A model's measured speed-up over a reference (the median of paired per-round
    ratios) and both medians (ms), from one side-by-side measurement of the two."""

    speedup: float
    reference_ms: float
    ms: float


def folded_speedups(reference: nn.Module, models: dict[str, nn.Module],
                    input_shape: tuple[int, ...], *, threads: int,
                    channels_last: bool = False, rounds: int = 5, min_run_time: float = 0.2
                    ) -> dict[str, Speedup]:
    """Each model of ``models`` folded and timed side by side with the folded ``reference``
    (folded once), one pair at a time: two models taking turns in millisecond blocks share
    the machine's drift, which many models taking turns (a round of seconds) do not."""
    shape = tuple(input_shape)
    folded = fold(reference, shape, channels_last=channels_last, threads=threads)[0]
    result = {}
    for name, model in models.items():
        timed = measure_side_by_side(
            {"reference": folded,
             "model": fold(model, shape, channels_last=channels_last, threads=threads)[0]},
            shape, channels_last=channels_last, threads=threads, rounds=rounds,
            min_run_time=min_run_time)
        result[name] = Speedup(timed.speedup("model", "reference"), timed["reference"][0],
                               timed["model"][0])
    return result
