"""Which plan ``leanconv shrink`` takes: the selection policy.

:func:`select_plan` weighs the knapsack's plan (:mod:`leanconv.search.knapsack`) against the
uniform plans (one spec on every layer, which pay no cost of mixing specs);
:func:`check_reachable` stops an unreachable target before anything is trained;
:func:`checked_plan` measures the selected plan before training, refits the table's
calibration when a plan misses (:func:`leanconv.search.correction.refit`), re-selects under a
corrected budget, and prefers a plan already measured at the target to a prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from torch import nn

from leanconv.converter import KEEP, convert
from leanconv.deploy.latency import Speedup
from leanconv.search.candidates import Layer
from leanconv.search.correction import refit
from leanconv.search.deployment import Deployment, specs_of
from leanconv.search.knapsack import Selection, choose
from leanconv.search.latency_table import LatencyTable
from leanconv.search.target import Target, TargetUnreachable

CHECKS = 4  # plans measured before training, at most
TOLERANCE = 0.02  # a plan may measure this much below the target speed-up


def _options(table: LatencyTable, layers: Sequence[Layer], target: Target,
             sensitivity: dict[str, dict[str, float]] | None) -> list[list[tuple[float, float]]]:
    """Per layer, per candidate: (cost in the model, ms or MACs; sensitivity, or 0 without)."""
    macs = target.kind == "macs_ratio"
    return [[(float(table.macs[layer.name][spec]) if macs else table.cost(layer.name, spec),
              sensitivity[layer.name][spec] if sensitivity else 0.0) for spec in layer.specs]
            for layer in layers]


def _rest(table: LatencyTable, target: Target) -> float:
    if target.kind == "macs_ratio":
        return table.total_macs - sum(row[KEEP] for row in table.macs.values())
    return table.rest_ms


def select_plan(table: LatencyTable, layers: Sequence[Layer],
                options: list[list[tuple[float, float]]], target: Target, budget: float
                ) -> Selection | None:
    """The least-loss plan predicted within ``budget`` (the whole model's ms, or MACs for a
    MACs target): the knapsack over the layers' ``options`` under the budget less the rest
    of the network and, for latency, less the cost of mixing specs (which every plan of two
    or more specs pays, :meth:`LatencyTable.predict`), or a uniform plan (one spec on every
    layer: no mixing cost) when one is within the budget and loses less. None when no plan
    is."""
    mixing = 0.0 if target.kind == "macs_ratio" else max(table.mixed_ms, 0.0)
    room = budget - _rest(table, target) - mixing
    best = choose(options, room) if room > 0 else None
    for spec in _common_specs(layers):
        uniform = _selection(options, tuple(layer.specs.index(spec) for layer in layers),
                             best)
        if _rest(table, target) + uniform.cost <= budget and (
                best is None or uniform.loss < best.loss):
            best = uniform
    return best


def _common_specs(layers: Sequence[Layer]) -> set[str]:
    """The specs every layer may take: the uniform plans."""
    return set.intersection(*(set(layer.specs) for layer in layers))


def _selection(options: list[list[tuple[float, float]]], indices: tuple[int, ...],
               other: Selection | None) -> Selection:
    """The plan ``indices`` as a :class:`Selection` found outside the knapsack; its lower
    bound is the knapsack's (``other``) when there is one and lower, else its own loss."""
    cost = sum(row[j][0] for row, j in zip(options, indices, strict=True))
    loss = sum(row[j][1] for row, j in zip(options, indices, strict=True))
    return Selection(indices, cost, loss, loss if other is None else min(loss,
                                                                        other.lower_bound))


def check_reachable(table: LatencyTable, layers: Sequence[Layer], target: Target) -> None:
    """TargetUnreachable when even the cheapest plan (each layer's cheapest candidate, or
    the cheapest uniform plan) misses the target."""
    options = _options(table, layers, target, None)
    if select_plan(table, layers, options, target, target.budget(table)) is not None:
        return
    if target.kind != "macs_ratio" and _measured_plan(
            table, layers, options, table.total_ms / target.budget(table)) is not None:
        return  # a calibration plan measured fast enough
    cheapest_plan = {layer.name: layer.specs[min(range(len(row)), key=lambda j: row[j][0])]
                     for layer, row in zip(layers, options, strict=True)}
    plans = [cheapest_plan, *({layer.name: spec for layer in layers}
                              for spec in _common_specs(layers))]
    if target.kind == "macs_ratio":
        cheapest = min(table.predict_macs(plan) for plan in plans)
        raise TargetUnreachable(
            f"shrink: macs_ratio={target.value:g} is unreachable with these candidates: the "
            f"cheapest plan keeps {cheapest / table.total_macs:.3f} of the MACs; macs_ratio >= "
            f"{math.ceil(cheapest / table.total_macs * 1000) / 1000:g} is reachable")
    cheapest = min(table.predict(plan) for plan in plans)
    best = table.total_ms / cheapest
    raise TargetUnreachable(
        f"shrink: {target.kind}={target.value:g} is unreachable with these candidates on this "
        f"machine: the fastest plan is predicted at {cheapest:.3f} ms against the original's "
        f"measured {table.total_ms:.3f} ms ({best:.2f}x); speedup <= "
        f"{math.floor(best * 100) / 100:g} (latency_ms >= {math.ceil(cheapest * 1000) / 1000:g})"
        f" is reachable. Nothing was trained.")


def plan_of(layers: Sequence[Layer], selection: Selection) -> dict[str, str]:
    """``{layer name: spec}`` of the knapsack's ``selection`` over ``layers``."""
    return {layer.name: layer.specs[j]
            for layer, j in zip(layers, selection.indices, strict=True)}


def checked_plan(original: nn.Module, layers: Sequence[Layer], table: LatencyTable,
                 target: Target, sensitivity: dict[str, dict[str, float]],
                 shape: tuple[int, ...], deployment: Deployment, say: Callable[[str], None]
                 ) -> tuple[Selection, dict[str, str], list[dict[str, float]],
                            list[list[tuple[float, float]]]]:
    """The selected plan, measured before anything is trained (:data:`CHECKS` at most), and
    the options it was selected from.

    A latency plan is applied data-free (speed does not depend on the weights), folded and
    timed in turns with the original. When its measured speed-up falls short of the target
    (by more than :data:`TOLERANCE`), the measured plan joins the table's calibration
    (:func:`leanconv.search.correction.refit`: the knapsack is drawn to exactly the layers
    whose cost the table underrates, so this is where a measurement teaches most), the
    budget shrinks by the factor the refitted table still overrates that plan's speed-up
    (one plan among many calibration plans moves a least-squares fit only so far), and at
    least to just below the plan's prediction, and the plan is selected again. A plan
    already measured at the target (a calibration plan, :func:`_measured_plan`) is taken
    instead when it loses no more. TargetUnreachable when no plan is left."""
    checks: list[dict[str, float]] = []
    budget = target.budget(table)
    for _ in range(CHECKS):
        options = _options(table, layers, target, sensitivity)
        selection = select_plan(table, layers, options, target, budget)
        known = _measured_plan(table, layers, options, table.total_ms / target.budget(table),
                               selection)
        from_measurements = known is not None and (selection is None
                                                   or known.loss <= selection.loss)
        if from_measurements:
            selection = known
        if selection is None:
            raise _unreached(target, table, checks, "the refitted table leaves no faster plan")
        plan = plan_of(layers, selection)
        if target.kind == "macs_ratio":
            return selection, plan, checks, options
        converted, _ = convert(original, specs_of(plan))
        measured = measure_speedup(original, converted, shape, deployment, plan)
        wanted = (table.total_ms / target.budget(table) if target.kind == "speedup"
                  else measured.reference_ms / target.value)
        check = {"predicted_speedup": table.total_ms / table.predict(plan),
                 "measured_speedup": measured.speedup,
                 "wanted_speedup": wanted, "budget_ms": budget,
                 "from_measurements": from_measurements}
        checks.append(check)
        say(f"plan check {len(checks)}: predicted {check['predicted_speedup']:.2f}x, measured "
            f"{check['measured_speedup']:.2f}x (target {wanted:.2f}x)")
        if check["measured_speedup"] >= wanted * (1 - TOLERANCE):
            return selection, plan, checks, options
        refit(table, f"plan check {len(checks)}", plan, measured.speedup)
        # what the refitted table still overrates of this plan, assumed of the next one too
        overrated = table.total_ms / table.predict(plan) / measured.speedup
        budget = min(budget, target.budget(table) / max(overrated, 1.0))
        if table.predict(plan) <= budget:  # least squares need not fit this plan exactly
            budget = table.predict(plan) * (1 - TOLERANCE)
    raise _unreached(target, table, checks, f"{CHECKS} plans were tried")


def _measured_plan(table: LatencyTable, layers: Sequence[Layer],
                   options: list[list[tuple[float, float]]], wanted: float,
                   knapsack: Selection | None = None) -> Selection | None:
    """The least-loss plan already measured (the calibration plans, the missed checks) at
    ``wanted`` speed-up or more (less :data:`TOLERANCE`): a measurement beats a prediction."""
    best = None
    for row in table.calibration.values():
        if row["measured_speedup"] < wanted * (1 - TOLERANCE):
            continue
        measured = _selection(options, tuple(layer.specs.index(row["plan"].get(
            layer.name, KEEP)) for layer in layers), knapsack)
        if best is None or measured.loss < best.loss:
            best = measured
    return best


def _unreached(target: Target, table: LatencyTable, checks: list[dict[str, float]], why: str
               ) -> TargetUnreachable:
    measured = ", ".join(f"{c['measured_speedup']:.2f}x" for c in checks)
    predicted = ", ".join(f"{c['predicted_speedup']:.2f}x" for c in checks)
    best = max([c["measured_speedup"] for c in checks]
               + [row["measured_speedup"] for row in table.calibration.values()], default=1.0)
    tried = (f"the plans measured {measured} (predicted {predicted}) and {why}" if checks
             else "no plan of the calibrated table is predicted to reach it, nor measured")
    return TargetUnreachable(
        f"shrink: {target.kind}={target.value:g} is not reached when measured: {tried}; "
        f"speedup <= {math.floor(best * 100) / 100:g} is reachable (the fastest plan "
        f"measured). Nothing was trained.")


def measure_speedup(original: nn.Module, shrunk: nn.Module, shape: tuple[int, ...],
                    deployment: Deployment, plan: Mapping[str, str] | None = None) -> Speedup:
    """Both models deployed (``shrunk``'s layers in the precisions ``plan`` gives them) and
    timed side by side, taking turns in millisecond blocks: the speed-up is the median of
    the paired per-round ratios."""
    return deployment.speedups(original, {"shrunk": (shrunk, plan or {})}, shape,
                               final=True)["shrunk"]
