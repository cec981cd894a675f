"""``leanconv.shrink``: a trained model made faster on this machine, losing the least accuracy.

1. **Layers and candidates** (:func:`leanconv.search.candidates.search_layers`).
2. **Latency table** (:func:`leanconv.search.latency_table.measure_table`): each layer x
   candidate timed folded on its real input at the requested batch, threads and memory
   format, cached on disk, then calibrated in the model by measured plans
   (:func:`leanconv.search.correction.calibrate`; latency targets only); the target is
   checked against the fastest plan here, **before**
   anything is trained (:class:`TargetUnreachable` says which target is reachable).
3. **Sensitivity** (:func:`leanconv.search.sensitivity.measure_sensitivity`): KL divergence
   to the original's outputs on held-out training images, one converted layer at a time.
4. **Selection** (:func:`select_plan`: the knapsack of :mod:`leanconv.search.knapsack`, or a
   uniform plan): least summed sensitivity under the predicted latency (or MACs) budget,
   and the Pareto front of plans.
5. **Recover and prove**: the plan is applied (``convert(model, plan, calibration=...)``),
   fine-tuned with distillation from the original (:func:`leanconv.train.train`), and both
   models are folded and timed side by side in one process
   (:func:`leanconv.deploy.latency.folded_speedups`); accuracies are on the test split.

The images split three ways: the first ``calib_images`` training images fit the weights,
the next ``held_out_images`` measure sensitivity, and the test split judges accuracy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leanconv.converter import KEEP, convert, describe_conv, save_converted
from leanconv.cost.latency import torch_threads
from leanconv.data.load import dataset_for_model
from leanconv.deploy.latency import Speedup, folded_speedups
from leanconv.loading import ModelInfo, load_model, reference_kind
from leanconv.ops._validate import check_int, check_threads
from leanconv.search.candidates import (
    KXK_CANDIDATES,
    POINTWISE_CANDIDATES,
    Layer,
    check_candidates,
    search_layers,
)
from leanconv.search.correction import calibrate, refit
from leanconv.search.knapsack import Selection, choose, pareto_front
from leanconv.search.latency_table import LatencyTable, measure_table
from leanconv.search.sensitivity import measure_sensitivity
from leanconv.train.distributed import DistContext
from leanconv.train.trainer import evaluate

TARGETS = ("speedup", "latency_ms", "macs_ratio")
CHECKS = 4  # plans measured before training, at most
TOLERANCE = 0.02  # a plan may measure this much below the target speed-up


class TargetUnreachable(ValueError):
    """No plan of the candidates meets the target; the message says which target is."""


@dataclass(frozen=True)
class Target:
    """One of: ``speedup`` (> 1: the original's measured latency / this), ``latency_ms``
    (> 0), ``macs_ratio`` (between 0 and 1: at most this share of the original's MACs)."""

    kind: str
    value: float

    @classmethod
    def from_args(cls, speedup: object, latency_ms: object, macs_ratio: object) -> Target:
        given = {k: v for k, v in zip(TARGETS, (speedup, latency_ms, macs_ratio), strict=True)
                 if v is not None}
        if len(given) != 1:
            raise ValueError(f"shrink: give exactly one target of speedup=, latency_ms=, "
                             f"macs_ratio=; got {given or 'none'}")
        (kind, value), = given.items()
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(
                value):
            raise ValueError(f"shrink: {kind}={value!r} is invalid; expected a number")
        if kind == "speedup" and value <= 1:
            raise ValueError(f"shrink: speedup={value!r} asks for no speed-up; expected a "
                             f"number > 1 (1.5 = 1.5x faster than the original)")
        if kind == "latency_ms" and value <= 0:
            raise ValueError(f"shrink: latency_ms={value!r} is invalid; expected ms > 0")
        if kind == "macs_ratio" and not 0 < value < 1:
            raise ValueError(f"shrink: macs_ratio={value!r} is invalid; expected a share "
                             f"of the original's MACs between 0 and 1 (0.5 = half)")
        return cls(kind, float(value))

    def budget(self, table: LatencyTable) -> float:
        """The whole model's allowed predicted latency (ms) or MACs."""
        if self.kind == "speedup":
            return table.total_ms / self.value
        if self.kind == "latency_ms":
            return self.value
        return self.value * table.total_macs

    def describe(self) -> str:
        return {"speedup": f"{self.value:g}x speed-up", "latency_ms": f"{self.value:g} ms",
                "macs_ratio": f"{self.value:g} of the MACs"}[self.kind]


@dataclass
class ShrinkResult:
    """What :func:`shrink` chose, predicted and measured (``report.json`` holds it)."""

    model: str
    target: dict[str, Any]
    setting: dict[str, Any]
    plan: dict[str, str]
    layers: list[dict[str, Any]]
    predicted_ms: float
    measured_ms: dict[str, float]
    speedup: float
    macs: dict[str, int]
    accuracy: dict[str, float | None]
    selection: dict[str, float]
    checks: list[dict[str, float]]
    pareto: list[dict[str, float]]
    table: dict[str, Any]
    seconds: dict[str, float]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def prediction_error(self) -> float:
        """The table's predicted speed-up of the chosen plan over the measured one, less 1
        (speed-ups, not milliseconds: the table and the final measurement run minutes apart
        on a machine whose absolute times drift)."""
        return self.table["total_ms"] / self.predicted_ms / self.speedup - 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "prediction_error": round(self.prediction_error, 4)}


def _options(table: LatencyTable, layers: Sequence[Layer], target: Target,
             sensitivity: dict[str, dict[str, float]] | None) -> list[list[tuple[float, float]]]:
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


def _check_reachable(table: LatencyTable, layers: Sequence[Layer], target: Target) -> None:
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


def _check_args(owner: str, model: object, out: object, batch: object, threads: object,
                epochs: object, calib_images: object, held_out_images: object,
                input_size: object) -> None:
    if not isinstance(model, str | Path):
        raise ValueError(f"{owner}: model={model!r} is invalid; expected a model reference "
                         f"(a trained checkpoint, a zoo name, torchvision:NAME, timm:NAME)")
    reference_kind(str(model))  # an unknown name: ValueError with close matches
    if not isinstance(out, str | Path) or not str(out):
        raise ValueError(f"{owner}: out={out!r} is invalid; expected the folder to write the "
                         f"plan, model and report to")
    check_int(owner, "batch", batch)
    check_threads(owner, threads)
    check_int(owner, "epochs", epochs, minimum=0)
    check_int(owner, "calib_images", calib_images)
    check_int(owner, "held_out_images", held_out_images)
    if input_size is not None and not (isinstance(input_size, Sequence) and len(input_size) == 3
                                       and all(isinstance(v, int) and v > 0 for v in input_size)):
        raise ValueError(f"{owner}: input_size={input_size!r} is invalid; expected (C, H, W) "
                         f"positive ints")


def _layer_rows(layers: Sequence[Layer], table: LatencyTable, plan: dict[str, str],
                sensitivity: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    return [{"name": layer.name, "old": describe_conv(layer.conv), "new": plan[layer.name],
             "ms_before": round(table.ms[layer.name][KEEP], 5),
             "ms_after": round(table.ms[layer.name][plan[layer.name]], 5),
             "ms_after_in_model": round(table.cost(layer.name, plan[layer.name]), 5),
             "macs_before": table.macs[layer.name][KEEP],
             "macs_after": table.macs[layer.name][plan[layer.name]],
             "sensitivity": round(sensitivity[layer.name][plan[layer.name]], 6),
             "candidates": {spec: {"ms": round(table.ms[layer.name][spec], 5),
                                   "sensitivity": round(sensitivity[layer.name][spec], 6)}
                            for spec in layer.specs}}
            for layer in layers]


def _fine_tune(converted_path: Path, ref: str, out: Path, dataset: Any, epochs: int,
               lr: float, batch_size: int, threads: int, progress: bool,
               data_options: dict[str, Any]) -> Path:
    """Fine-tune the converted model with distillation from ``ref`` on the images it was
    calibrated on (the same data, size and channels)."""
    from leanconv.train import TrainConfig, train

    channels, size, _ = dataset.image_shape
    options = {"image_size": size, "in_chans": channels, **data_options}
    config = TrainConfig(init=str(converted_path), teacher=ref, epochs=epochs, lr=lr,
                         schedule="onecycle", batch_size=batch_size, threads=threads,
                         out=str(out), progress=progress, data=dataset.spec, **options)
    train(config)
    return out / "last.pt"


def shrink(
    model: str,
    *,
    out: str,
    speedup: float | None = None,
    latency_ms: float | None = None,
    macs_ratio: float | None = None,
    data: str | None = None,
    batch: int = 1,
    threads: int | None = None,
    input_size: tuple[int, int, int] | None = None,
    channels_last: bool = False,
    candidates: Sequence[str] = KXK_CANDIDATES,
    pointwise_candidates: Sequence[str] = POINTWISE_CANDIDATES,
    epochs: int = 1,
    lr: float = 0.01,
    batch_size: int = 128,
    calib_images: int = 1024,
    held_out_images: int = 256,
    use_cache: bool = True,
    progress: bool | Callable[[str], None] = True,
    **data_options: Any,
) -> ShrinkResult:
    """Make the trained ``model`` (a :func:`leanconv.load_model` reference) meet one target
    (``speedup``, ``latency_ms`` or ``macs_ratio``; :class:`Target`) on this machine at
    ``batch`` x ``input_size`` (default: the model's own), ``threads`` (default: torch's
    current count) and memory format,
    converting one layer at a time to the candidate that loses least (module docstring).

    ``candidates``: the specs KxK convs may take; ``pointwise_candidates``: 1x1 convs'
    (``keep`` is always one). ``data`` (default: what the model was trained on) and
    ``data_options`` (:func:`leanconv.data.load_dataset`'s) give the images; ``epochs`` of
    fine-tuning with distillation from ``model`` at ``lr`` (0: none). Writes ``out/plan.json``,
    ``out/model.pt`` (what :func:`leanconv.load_model` loads), ``out/report.md``,
    ``out/report.json`` and ``out/pareto.png``. Raises :class:`TargetUnreachable` before any
    training when no plan meets the target."""
    from leanconv.search.report import write_outputs

    owner = "shrink"
    target = Target.from_args(speedup, latency_ms, macs_ratio)
    _check_args(owner, model, out, batch, threads, epochs, calib_images, held_out_images,
                input_size)
    kxk = check_candidates(owner, "candidates", candidates)
    pointwise = check_candidates(owner, "pointwise_candidates", pointwise_candidates)
    threads = threads or torch.get_num_threads()
    say = progress if callable(progress) else (print if progress else (lambda _: None))
    ref, out_dir, seconds = str(model), Path(out), {}
    start = time.perf_counter()
    original, info = load_model(ref)
    original.eval()
    dataset = dataset_for_model(info, data, **data_options)
    shape = (batch, *(input_size or info.input_shape(1)[1:]))
    with torch_threads(threads):
        layers = search_layers(original, shape, kxk, pointwise)
        if not layers:
            raise ValueError(f"{owner}: {ref!r} has no layer these candidates can replace "
                             f"(ungrouped convs other than the stem)")
        table = measure_table(original, layers, shape, threads=threads,
                              channels_last=channels_last, use_cache=use_cache)
        if target.kind != "macs_ratio":
            calibrate(table, original, layers, shape, threads=threads,
                      channels_last=channels_last)
        seconds["table"] = round(table.seconds, 2)
        say(table.describe())
        _check_reachable(table, layers, target)
        images = dataset.model_inputs(calib_images + held_out_images)
        calibration, held_out = images[:calib_images], images[calib_images:]
        sensitivity, seconds["sensitivity"] = measure_sensitivity(
            original, layers, calibration, held_out, progress=say)
        start_checks = time.perf_counter()
        selection, plan, checks, options = checked_plan(
            original, layers, table, target, sensitivity, shape, threads, channels_last, say)
        seconds["checks"] = round(time.perf_counter() - start_checks, 2)
        result = _recover(ref, original, info, dataset, plan, calibration, out_dir, epochs,
                          lr, batch_size, threads, say, data_options, seconds)
        measured = _measure(original, result["model"], shape, threads, channels_last)
    seconds["total"] = round(time.perf_counter() - start, 2)
    front = pareto_front(options)
    predict = table.predict_macs if target.kind == "macs_ratio" else table.predict
    shrunk = ShrinkResult(
        model=ref, target={"kind": target.kind, "value": target.value,
                           "budget": target.budget(table)},
        setting={"input_shape": list(shape), "threads": threads,
                 "channels_last": channels_last, "data": dataset.spec,
                 "calib_images": calib_images, "held_out_images": held_out_images,
                 "epochs": epochs, "lr": lr, "candidates": list(kxk),
                 "pointwise_candidates": list(pointwise)},
        plan=plan, layers=_layer_rows(layers, table, plan, sensitivity),
        predicted_ms=table.predict(plan),
        measured_ms={"original": measured.reference_ms, "shrunk": measured.ms},
        speedup=measured.speedup,
        macs={"original": table.total_macs, "shrunk": table.predict_macs(plan)},
        accuracy={"original": _accuracy(original, dataset), **result["accuracy"]},
        selection=_selection_info(selection), checks=checks,
        pareto=[{"cost": predict(_plan_of(layers, s)), "loss": s.loss} for s in front],
        table={"entries": table.entries, "measured": table.measured,
               "reused": table.reused, "cache": table.cache, "total_ms": table.total_ms,
               "rest_ms": table.rest_ms, "correction": table.correction,
               "mixed_ms": table.mixed_ms, "calibration": table.calibration},
        seconds=seconds)
    shrunk.files = write_outputs(shrunk, out_dir, result["model_file"])
    return shrunk


def _plan_of(layers: Sequence[Layer], selection: Selection) -> dict[str, str]:
    return {layer.name: layer.specs[j] for layer, j in zip(layers, selection.indices,
                                                           strict=True)}


def checked_plan(original: nn.Module, layers: Sequence[Layer], table: LatencyTable,
                  target: Target, sensitivity: dict[str, dict[str, float]],
                  shape: tuple[int, ...], threads: int, channels_last: bool,
                  say: Callable[[str], None]
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
        plan = _plan_of(layers, selection)
        if target.kind == "macs_ratio":
            return selection, plan, checks, options
        converted, _ = convert(original, plan, input_shape=None)
        measured = _measure(original, converted, shape, threads, channels_last)
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


def _selection_info(selection: Selection) -> dict[str, float]:
    return {"loss": selection.loss, "lower_bound": selection.lower_bound,
            "gap": selection.loss - selection.lower_bound}


def _accuracy(model: nn.Module, dataset: Any) -> float:
    return evaluate(model, dataset.test, dataset, 1000, DistContext())["acc"]


def _recover(ref: str, original: nn.Module, info: ModelInfo, dataset: Any,
             plan: dict[str, str], calibration: torch.Tensor, out_dir: Path, epochs: int,
             lr: float, batch_size: int, threads: int, say: Callable[[str], None],
             data_options: dict[str, Any], seconds: dict[str, float]) -> dict[str, Any]:
    """Apply ``plan`` with calibration, save it, fine-tune it with distillation."""
    start = time.perf_counter()
    converted, report = convert(original, plan, input_shape=None, calibration=calibration)
    out_dir.mkdir(parents=True, exist_ok=True)
    converted_path = out_dir / "converted.pt"
    save_converted(str(converted_path), converted, info, report)
    seconds["calibration"] = round(time.perf_counter() - start, 2)
    accuracy = {"calibrated": _accuracy(converted, dataset), "fine_tuned": None}
    say(f"plan applied and calibrated: test accuracy {accuracy['calibrated']:.4f}")
    model_file = converted_path
    if epochs:
        start = time.perf_counter()
        model_file = _fine_tune(converted_path, ref, out_dir / "finetune", dataset, epochs, lr,
                                batch_size, threads, say is print, data_options)
        seconds["fine_tune"] = round(time.perf_counter() - start, 2)
        converted, _ = load_model(str(model_file))
        accuracy["fine_tuned"] = _accuracy(converted, dataset)
    return {"model": converted.eval(), "model_file": model_file, "accuracy": accuracy}


def _measure(original: nn.Module, shrunk: nn.Module, shape: tuple[int, ...], threads: int,
             channels_last: bool) -> Speedup:
    """Both models folded and timed side by side, taking turns in millisecond blocks: the
    speed-up is the median of the paired per-round ratios."""
    return folded_speedups(original, {"shrunk": shrunk}, shape, threads=threads,
                           channels_last=channels_last, rounds=7)["shrunk"]
