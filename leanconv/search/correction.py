"""The latency table's in-context correction, fitted to plans measured on the model itself.

A layer timed alone is not the layer inside the model: its input comes from another layer's
output, the fold changes what sits at its boundaries, and a model that mixes operators runs
kernels of different kinds in turn. On resnet20_cifar at batch 1 (2 threads) the table's
sum over-predicted the speed-up of each of 20 random plans by more than 10% (median 21%),
while each uniform plan (one spec everywhere) was within 7%: mixing costs something no
per-layer entry holds.

So the table is calibrated with measured plans: the uniform plan of each candidate spec
(every layer that may take it takes it) and :data:`RANDOM_PLANS` random plans, each applied
data-free (speed does not depend on the weights), deployed and timed side by side with the
deployed original (:meth:`leanconv.search.deployment.Deployment.speedups`: folded in
PyTorch, or built in the runtime and precisions shrink measures in; a plan whose layers
take a lower precision pays the conversions between precisions there, which ``m`` and ``c``
absorb), which gives its latency ratio ``y_p = t(p) / t(original)``. The table's prediction
of plan ``p`` is

    predicted(p) = T + sum_i (e_{i,p_i} - k_i + c_{p_i} k_i) + [p mixes specs] m

(``T``: the table's measured total; ``e_{i,f}``, ``k_i``: layer ``i``'s entries for spec
``f`` and for ``keep``; ``c_f``: spec ``f``'s in-context share of the layer's original
latency; ``m``: the cost of mixing, in ms, paid by a plan of two or more specs, ``keep``
included), and ``c`` and ``m`` are the least-squares fit of the measured ``y_p T`` over the
calibration plans, in relative error. Every other plan's latency is a prediction (the
benchmark ``benchmarks/shrink_vs_baselines.py --part latency`` holds out plans of another
seed). A plan shrink measures before training and finds short joins the fit (:func:`refit`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from leanconv.converter import KEEP, convert
from leanconv.search.candidates import Layer
from leanconv.search.deployment import Deployment, specs_of
from leanconv.search.latency_table import LatencyTable

RANDOM_PLANS = 6  # random calibration plans, besides one uniform plan per spec
SEED = 1234  # the random calibration plans' seed (benchmarks hold out plans of other seeds)


def uniform_plans(layers: Sequence[Layer]) -> dict[str, dict[str, str]]:
    """Per candidate spec (other than ``keep``), the plan giving it to every layer that may
    take it (the layers' order of first appearance)."""
    specs = dict.fromkeys(spec for layer in layers for spec in layer.specs if spec != KEEP)
    return {spec: {layer.name: spec for layer in layers if spec in layer.specs}
            for spec in specs}


def calibration_plans(layers: Sequence[Layer], random_plans: int = RANDOM_PLANS
                      ) -> dict[str, dict[str, str]]:
    """The uniform plans (named ``uniform SPEC``) and ``random_plans`` random ones (``random
    N``: each layer a random candidate, seeded by :data:`SEED`)."""
    rng = random.Random(SEED)
    plans = {f"uniform {spec}": plan for spec, plan in uniform_plans(layers).items()}
    for i in range(random_plans):
        plans[f"random {i}"] = {layer.name: rng.choice(layer.specs) for layer in layers}
    return plans


def calibrate(table: LatencyTable, model: nn.Module, layers: Sequence[Layer],
              input_shape: tuple[int, ...], *, threads: int, channels_last: bool = False,
              random_plans: int = RANDOM_PLANS, deployment: Deployment | None = None
              ) -> LatencyTable:
    """Measure the calibration plans of ``layers`` against ``model`` in ``deployment``
    (default: PyTorch fp32 at ``threads`` and the memory format) and :func:`fit` the table
    to them. Returns ``table``."""
    start = time.perf_counter()
    deployment = deployment or Deployment(threads=threads, channels_last=channels_last)
    plans = calibration_plans(layers, random_plans)
    models = {name: (convert(model, specs_of(plan))[0], plan) for name, plan in plans.items()}
    measured = {name: value.speedup for name, value in deployment.speedups(
        model, models, input_shape).items()}
    fit(table, {name: (plan, measured[name]) for name, plan in plans.items()})
    table.seconds += time.perf_counter() - start
    return table


def fit(table: LatencyTable, plans: Mapping[str, tuple[Mapping[str, str], float]]
        ) -> LatencyTable:
    """Set ``table.correction`` and ``table.mixed_ms`` to the least-squares fit (in relative
    error) of ``plans`` (``{name: (plan, measured speed-up over the original)}``; module
    docstring); ``table.calibration`` keeps them with the speed-up the raw table predicted
    and the fitted one. Returns ``table``."""
    _check_plans(table, plans)
    table.correction, table.mixed_ms = {}, 0.0
    raw = {name: table.predict(plan) for name, (plan, _) in plans.items()}
    specs = list(dict.fromkeys(spec for row in table.ms.values() for spec in row
                               if spec != KEEP))
    rows, targets = [], []
    for name, (plan, speedup) in plans.items():
        kept = [sum(table.ms[layer][KEEP] for layer, spec in plan.items() if spec == f)
                for f in specs]
        # weighted by 1 / y_p = speedup: the fit minimises the error relative to measured
        rows.append([speedup * v for v in (*kept, table.total_ms * table.mixes(plan))])
        targets.append(speedup * (table.total_ms / speedup - raw[name]))
    solution = torch.linalg.lstsq(torch.tensor(rows, dtype=torch.float64),
                                  torch.tensor(targets, dtype=torch.float64)[:, None],
                                  driver="gelsd").solution[:, 0].tolist()
    table.correction = dict(zip(specs, solution[:-1], strict=True))
    table.mixed_ms = solution[-1] * table.total_ms
    table.calibration = {name: {"plan": dict(plan), "raw_speedup": table.total_ms / raw[name],
                                "fitted_speedup": table.total_ms / table.predict(plan),
                                "measured_speedup": speedup}
                         for name, (plan, speedup) in plans.items()}
    return table


def refit(table: LatencyTable, name: str, plan: Mapping[str, str], speedup: float
          ) -> LatencyTable:
    """:func:`fit` the table again with one more measured plan (``name``: its label)."""
    plans = {key: (row["plan"], row["measured_speedup"])
             for key, row in table.calibration.items()}
    return fit(table, {**plans, name: (plan, speedup)})


def _check_plans(table: LatencyTable, plans: object) -> None:
    if not isinstance(plans, Mapping) or not plans:
        raise ValueError(f"fit: plans={plans!r} is invalid; expected a non-empty "
                         f"{{name: (plan, measured speed-up)}}")
    for name, value in plans.items():
        ok = (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Mapping)
              and isinstance(value[1], int | float) and math.isfinite(value[1])
              and value[1] > 0)
        if not ok:
            raise ValueError(f"fit: plans[{name!r}]={value!r} is invalid; expected (plan, "
                             f"measured speed-up > 0)")
        unknown = sorted(set(value[0]) - set(table.ms))
        if unknown:
            raise ValueError(f"fit: plans[{name!r}] names layers the table does not have: "
                             f"{unknown}; the table's layers: {sorted(table.ms)}")
        bad = {layer: spec for layer, spec in value[0].items() if spec not in table.ms[layer]}
        if bad:
            raise ValueError(f"fit: plans[{name!r}] gives layers specs the table did not "
                             f"measure: {bad}")
