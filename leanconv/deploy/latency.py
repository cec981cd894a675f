"""Deployment latency: models folded as they are deployed (:func:`leanconv.fold`: BatchNorm
into the convs, each operator in its fastest measured form), then timed side by side in
interleaved rounds (:func:`leanconv.cost.latency.measure_side_by_side`). What ``leanconv
compare``, ``leanconv cost --latency`` and ``leanconv shrink`` report, so that a latency
column is what a user deploys, not eager-mode overhead of training-time structure."""

from __future__ import annotations

from torch import nn

from leanconv.cost.latency import measure_side_by_side
from leanconv.deploy.fold import fold

FOLDED_NOTE = "latency of the folded models (BatchNorm folded, fastest forms), side by side"


def folded_side_by_side(models: dict[str, nn.Module], input_shape: tuple[int, ...], *,
                        threads: int, channels_last: bool = False, device: str = "cpu",
                        rounds: int = 5, min_run_time: float = 0.1
                        ) -> dict[str, tuple[float, float]]:
    """Median and IQR latency (ms) of each model of ``models`` folded on ``input_shape``
    (the models are not changed)."""
    folded = {name: fold(model.to(device), tuple(input_shape), channels_last=channels_last,
                         threads=threads)[0] for name, model in models.items()}
    return measure_side_by_side(folded, tuple(input_shape), device,
                                channels_last=channels_last, threads=threads, rounds=rounds,
                                min_run_time=min_run_time)
