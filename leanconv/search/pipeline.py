"""``leanconv.shrink``: a trained model made faster on this machine, losing the least accuracy.

1. **Layers and candidates** (:func:`leanconv.search.candidates.search_layers`).
2. **Latency table** (:func:`leanconv.search.latency_table.measure_table`): each layer x
   candidate timed folded on its real input at the requested batch, threads and memory
   format, cached on disk, then calibrated in the model by measured plans
   (:func:`leanconv.search.correction.calibrate`; latency targets only); the target is
   checked against the fastest plan here, **before** anything is trained
   (:class:`~leanconv.search.target.TargetUnreachable` says which target is reachable).
3. **Sensitivity** (:func:`leanconv.search.sensitivity.measure_sensitivity`): KL divergence
   to the original's outputs on held-out training images, one converted layer at a time.
4. **Selection** (:mod:`leanconv.search.selection`: the knapsack of
   :mod:`leanconv.search.knapsack`, or a uniform plan): least summed sensitivity under the
   predicted latency (or MACs) budget, checked by measurement before training, and the
   Pareto front of plans.
5. **Recover and prove**: the plan is applied (``convert(model, plan, calibration=...)``),
   fine-tuned with distillation from the original (:func:`leanconv.train.train`), and both
   models are folded and timed side by side in one process
   (:func:`leanconv.deploy.latency.folded_speedups`); accuracies are on the test split.

The images split three ways: the first ``calib_images`` training images fit the weights,
the next ``held_out_images`` measure sensitivity, and the test split judges accuracy. Only
accuracy needs labels: on images whose labels are not the model's classes (``images:DIR``,
another set of classes, ``synthetic`` for a 1000-class model), the fine-tuning is
distillation alone and the test split judges the shrunk model's agreement with the original
(top-1 share and KL divergence) instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leanconv._validate import check_int, check_threads
from leanconv.bench.baselines import Baselines, free_baselines
from leanconv.converter import KEEP, ConversionReport, convert, describe_conv, save_converted
from leanconv.cost.latency import torch_threads
from leanconv.data.load import dataset_for_model, labels_apply
from leanconv.loading import ModelInfo, load_model, reference_kind
from leanconv.runtimes import get_runtime
from leanconv.search.candidates import (
    KXK_CANDIDATES,
    POINTWISE_CANDIDATES,
    Layer,
    check_candidates,
    search_layers,
)
from leanconv.search.correction import calibrate
from leanconv.search.deployment import Deployment, specs_of
from leanconv.search.knapsack import Selection, pareto_front
from leanconv.search.latency_table import LatencyTable, measure_table
from leanconv.search.report import ShrinkResult, write_outputs
from leanconv.search.selection import (
    TOLERANCE,
    check_reachable,
    checked_plan,
    measure_speedup,
    plan_of,
)
from leanconv.search.sensitivity import measure_sensitivity
from leanconv.search.target import Target
from leanconv.train import TrainConfig, evaluate, train
from leanconv.train.distributed import DistContext
from leanconv.train.evaluate import evaluate_agreement

TIMING_CALIBRATION = 32  # images int8 timing builds calibrate on (speed ignores the values)


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
    if input_size is not None and input_size[1] != input_size[2]:
        raise ValueError(f"{owner}: input_size={tuple(input_size)} is not square; the images "
                         f"are loaded square, so give (C, S, S)")


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


def _fine_tune(converted_path: Path, teacher: str, out: Path, dataset: Any, epochs: int,
               lr: float, batch_size: int, threads: int, progress: bool, label_free: bool,
               data_options: dict[str, Any]) -> Path:
    """Fine-tune the converted model with distillation from ``teacher`` (a file) on the
    images it was calibrated on (the same data, size and channels); distillation alone when
    ``label_free``."""
    channels, size, _ = dataset.image_shape
    options = {"image_size": size, "in_chans": channels, **data_options}
    config = TrainConfig(init=str(converted_path), teacher=teacher, epochs=epochs, lr=lr,
                         schedule="onecycle", batch_size=batch_size, threads=threads,
                         out=str(out), progress=progress, data=dataset.spec,
                         distill_weight=1.0 if label_free else None, **options)
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
    num_classes: int | None = None,
    in_chans: int | None = None,
    runtime: str = "torch",
    precision: Sequence[str] | None = None,
    baselines: bool = True,
    **data_options: Any,
) -> ShrinkResult:
    """Make the trained ``model`` (a :func:`leanconv.load_model` reference) meet one target
    (``speedup``, ``latency_ms`` or ``macs_ratio``; :class:`Target`) on this machine at
    ``batch`` x ``input_size`` (default: the model's own), ``threads`` (default: torch's
    current count) and memory format,
    converting one layer at a time to the candidate that loses least (module docstring).

    ``candidates``: the specs KxK convs may take; ``pointwise_candidates``: 1x1 convs'
    (``keep`` is always one). ``data`` (default: what the model was trained on) and
    ``data_options`` (:func:`leanconv.data.load_dataset`'s) give the images (any the model
    takes: labels are needed for accuracy only, module docstring); ``epochs`` of
    fine-tuning with distillation from ``model`` at ``lr`` (0: none). ``num_classes`` and
    ``in_chans``: for a model built from a name, its outputs and input channels (the images
    follow the model's channels).

    ``runtime`` (:data:`leanconv.runtimes.RUNTIMES`: ``torch``, ``onnxruntime``,
    ``openvino``) and ``precision`` (the model's, then at most one lower precision single
    layers may take, e.g. ``("fp32", "int8")``; or ``("int8",)``: the whole model in int8,
    each layer choosing an operator; default: the runtime's first) say where every latency
    is measured and the speed-up is counted from (the original in the model's precision is
    1.00x). ``baselines``: first measure the free baselines
    (:func:`leanconv.bench.baselines.free_baselines`, the unchanged model in every installed
    runtime and precision); the report compares the result with the best of ``runtime``'s
    and, where that baseline is as fast and loses no more, hands it back instead.

    Writes ``out/plan.json``, ``out/model.pt`` (what :func:`leanconv.load_model` loads),
    the runtime's artifact (``out/model.onnx``, or ``out/model.xml`` and ``.bin``) when the
    runtime is not PyTorch, ``out/report.md``, ``out/report.json`` and ``out/pareto.png``.
    Raises :class:`TargetUnreachable` before any training when no plan meets the target."""
    owner = "shrink"
    target = Target.from_args(speedup, latency_ms, macs_ratio)
    _check_args(owner, model, out, batch, threads, epochs, calib_images, held_out_images,
                input_size)
    kxk = check_candidates(owner, "candidates", candidates)
    pointwise = check_candidates(owner, "pointwise_candidates", pointwise_candidates)
    threads = threads or torch.get_num_threads()
    runtime_entry = get_runtime(owner, runtime)
    precisions = tuple(precision) if precision is not None else runtime_entry.precisions[:1]
    deployment = Deployment(runtime, precisions, threads, channels_last, owner=owner)
    say = progress if callable(progress) else (print if progress else (lambda _: None))
    ref, out_dir, seconds = str(model), Path(out), {}
    start = time.perf_counter()
    original, info = load_model(ref, num_classes=num_classes, in_chans=in_chans)
    original.eval()
    if input_size is not None:  # the images at that size
        data_options.setdefault("image_size", input_size[1])
    dataset = dataset_for_model(info, data, need_labels=False, **data_options)
    no_accuracy = labels_apply(info, dataset)
    if no_accuracy:
        say(f"no accuracy: {no_accuracy}; the shrunk model is judged by its agreement with "
            f"the original, and fine-tuned by distillation alone")
    shape = (batch, *(input_size or info.input_shape(1)[1:]))
    with torch_threads(threads):
        images = dataset.model_inputs(calib_images + held_out_images)
        calibration, held_out = images[:calib_images], images[calib_images:]
        deployment = replace(deployment, calibration=calibration[:TIMING_CALIBRATION])
        free = None
        if baselines:
            start_baselines = time.perf_counter()
            free = free_baselines(original, shape, threads=threads, calibration=calibration,
                                  dataset=dataset, progress=say)
            seconds["baselines"] = round(time.perf_counter() - start_baselines, 2)
            say(_baselines_line(free, runtime))
        # with a precision per layer, every conv chooses one (the stem and the shortcuts too)
        layers = search_layers(original, shape, kxk, pointwise,
                               every_conv=deployment.lowered is not None)
        if not any(len(layer.specs) > 1 for layer in layers):
            raise ValueError(f"{owner}: {ref!r} has no layer these candidates can replace "
                             f"(ungrouped convs other than the stem)")
        for layer in layers:
            layer.specs = deployment.choices(layer.specs)
        table = measure_table(original, layers, shape, threads=threads,
                              channels_last=channels_last, use_cache=use_cache,
                              deployment=deployment)
        if target.kind != "macs_ratio":
            calibrate(table, original, layers, shape, threads=threads,
                      channels_last=channels_last, deployment=deployment)
        seconds["table"] = round(table.seconds, 2)
        say(table.describe())
        check_reachable(table, layers, target)
        sensitivity, seconds["sensitivity"] = measure_sensitivity(
            original, layers, calibration, held_out, progress=say)
        start_checks = time.perf_counter()
        selection, plan, checks, options = checked_plan(
            original, layers, table, target, sensitivity, shape, deployment, say)
        seconds["checks"] = round(time.perf_counter() - start_checks, 2)
        result = _recover(ref, original, info, dataset, plan, calibration, out_dir, epochs,
                          lr, batch_size, threads, say, data_options, seconds, no_accuracy)
        measured = measure_speedup(original, result["model"], shape, deployment, plan)
        wanted = {"speedup": target.value, "macs_ratio": None}.get(
            target.kind, measured.reference_ms / target.value)
        deployed = _deployable(original, result, plan, shape, deployment, calibration,
                               dataset, no_accuracy, free, wanted, say)
        if deployed["artifact"] is not None:  # the file records what eval needs to load data
            answer = info if deployed["summary"]["answer"] == "free baseline" else load_model(
                str(result["model_file"]))[1]
            deployed["artifact"].metadata = asdict(answer)
    seconds["total"] = round(time.perf_counter() - start, 2)
    front = pareto_front(options)
    predict = table.predict_macs if target.kind == "macs_ratio" else table.predict
    shrunk = ShrinkResult(
        model=ref, target={"kind": target.kind, "value": target.value,
                           "budget": target.budget(table)},
        setting={"input_shape": list(shape), "threads": threads, "runtime": runtime,
                 "precision": list(precisions),
                 "channels_last": channels_last, "data": dataset.spec,
                 "calib_images": calib_images, "held_out_images": held_out_images,
                 "epochs": epochs, "lr": lr, "candidates": list(kxk),
                 "pointwise_candidates": list(pointwise)},
        plan=plan, layers=_layer_rows(layers, table, plan, sensitivity),
        predicted_ms=table.predict(plan),
        measured_ms={"original": measured.reference_ms, "shrunk": measured.ms},
        speedup=measured.speedup,
        macs={"original": table.total_macs, "shrunk": table.predict_macs(plan)},
        accuracy={"original": None if no_accuracy else _accuracy(original, dataset),
                  **result["accuracy"]},
        selection=_selection_info(selection), checks=checks,
        pareto=[{"cost": predict(plan_of(layers, s)), "loss": s.loss} for s in front],
        table={"entries": table.entries, "measured": table.measured,
               "reused": table.reused, "cache": table.cache, "total_ms": table.total_ms,
               "rest_ms": table.rest_ms, "correction": table.correction,
               "mixed_ms": table.mixed_ms, "calibration": table.calibration},
        seconds=seconds, no_accuracy=no_accuracy, agreement=result["agreement"],
        baselines=free.to_json() if free is not None else None,
        deployed=deployed["summary"])
    shrunk.files = write_outputs(shrunk, out_dir, result["model_file"], deployed["artifact"])
    return shrunk


def _baselines_line(free: Baselines, runtime: str) -> str:
    """One line: the fastest free baseline overall and in ``runtime``."""
    best, own = free.best(), free.best(runtime)
    return (f"free baselines (the unchanged model): fastest {best.runtime} {best.precision} "
            f"{best.speedup:.2f}x over torch fp32; in {runtime}: {own.precision} "
            f"{own.speedup_in_runtime:.2f}x over its {free.rows_of(runtime)[0].precision}")


def _quality(model: Any, original: nn.Module, dataset: Any, no_accuracy: str | None
             ) -> float:
    """Test accuracy, or top-1 agreement with ``original`` where there is no accuracy."""
    if no_accuracy is None:
        return _accuracy(model, dataset)
    return evaluate_agreement(model, original, dataset.test, dataset, 1000,
                              DistContext())["agreement"]


def _deployable(original: nn.Module, result: dict[str, Any], plan: dict[str, str],
                shape: tuple[int, ...], deployment: Deployment, calibration: torch.Tensor,
                dataset: Any, no_accuracy: str | None, free: Baselines | None,
                wanted: float | None, say: Callable[[str], None]) -> dict[str, Any]:
    """The shrunk model built in the runtime (int8 calibrated on all the calibration
    images), judged on the test split (a lower precision changes the outputs), and timed in
    turns with the original and with the fastest free baseline of the runtime that is no
    less accurate. When that baseline is as fast, or meets the ``wanted`` speed-up itself
    (within :data:`TOLERANCE`), it is the answer (the target, with no more loss) and its
    artifact is the one handed back. ``{"summary": ..., "artifact": the artifact to write
    or None}``."""
    if deployment.runtime == "torch" and free is None:
        return {"summary": None, "artifact": None}
    artifact = deployment.artifact(result["model"], shape, plan, calibration=calibration)
    quality = _quality(artifact, original, dataset, no_accuracy)
    measure = "agreement" if no_accuracy else "accuracy"
    summary: dict[str, Any] = {"runtime": deployment.runtime, "artifact": artifact.name,
                               measure: quality, "answer": "shrunk"}
    contender = None
    if free is not None:
        rows = [row for row in free.rows_of(deployment.runtime)
                if (row.agreement if no_accuracy else row.accuracy) is not None
                and (row.agreement if no_accuracy else row.accuracy) >= quality]
        contender = min(rows, key=lambda row: row.ms, default=None)
    timed_artifacts = {"original": deployment.artifact(original, shape), "shrunk": artifact}
    if contender is not None:
        timed_artifacts["baseline"] = free.artifacts[contender.name]
    timed = deployment.side_by_side(timed_artifacts, shape)
    summary["speedup"] = timed.speedup("shrunk", "original")
    say(f"{artifact.name} artifact: test {measure} {quality:.4f}, "
        f"{summary['speedup']:.2f}x over the original in {deployment.describe()}")
    if contender is not None:
        baseline_speedup = timed.speedup("baseline", "original")
        summary["baseline"] = {"artifact": timed_artifacts["baseline"].name,
                               measure: contender.agreement if no_accuracy
                               else contender.accuracy, "speedup": baseline_speedup}
        meets = wanted is not None and baseline_speedup >= wanted * (1 - TOLERANCE)
        if baseline_speedup >= summary["speedup"] or meets:
            summary["answer"] = "free baseline"
            why = ("meets the target" if meets and baseline_speedup < summary["speedup"]
                   else "is as fast as the shrunk model or faster")
            artifact = timed_artifacts["baseline"]
            written = ("it is the artifact written" if artifact.suffix is not None else
                       "deploy the original so; model.pt is the shrunk model")
            say(f"the free baseline is the answer: the unchanged model in {artifact.name} "
                f"runs {baseline_speedup:.2f}x, {why}, and loses no more; {written}")
    return {"summary": summary,
            "artifact": artifact if artifact.suffix is not None else None}


def _selection_info(selection: Selection) -> dict[str, float]:
    return {"loss": selection.loss, "lower_bound": selection.lower_bound,
            "gap": selection.loss - selection.lower_bound}


def _accuracy(model: nn.Module, dataset: Any) -> float:
    return evaluate(model, dataset.test, dataset, 1000, DistContext())["acc"]


def _judge(model: nn.Module, original: nn.Module, dataset: Any, no_accuracy: str | None,
           stage: str, say: Callable[[str], None]) -> tuple[float | None, dict[str, Any] | None]:
    """``(accuracy, agreement)`` of ``model`` on the test split, one of them None: the
    accuracy where the labels are the model's classes, else its agreement with
    ``original``; said in one line."""
    if no_accuracy is None:
        accuracy = _accuracy(model, dataset)
        say(f"{stage}: test accuracy {accuracy:.4f}")
        return accuracy, None
    agreement = evaluate_agreement(model, original, dataset.test, dataset, 1000, DistContext())
    say(f"{stage}: top-1 agreement with the original {agreement['agreement']:.4f}, KL "
        f"{agreement['kl']:.4f} (test split)")
    return None, agreement


def _teacher_file(ref: str, original: nn.Module, info: ModelInfo, out_dir: Path) -> str:
    """The original as a file to distil from: ``ref`` itself when it is one, else the model
    built from the name saved as ``out_dir/original.pt`` (building the name again would
    give other random weights)."""
    if info.kind in ("checkpoint", "converted"):
        return ref
    path = out_dir / "original.pt"
    save_converted(str(path), original, info, ConversionReport("standard"))
    return str(path)


def _recover(ref: str, original: nn.Module, info: ModelInfo, dataset: Any,
             plan: dict[str, str], calibration: torch.Tensor, out_dir: Path, epochs: int,
             lr: float, batch_size: int, threads: int, say: Callable[[str], None],
             data_options: dict[str, Any], seconds: dict[str, float], no_accuracy: str | None
             ) -> dict[str, Any]:
    """Apply ``plan`` with calibration, save it, fine-tune it with distillation."""
    start = time.perf_counter()
    converted, report = convert(original, specs_of(plan), calibration=calibration)
    out_dir.mkdir(parents=True, exist_ok=True)
    converted_path = out_dir / "converted.pt"
    save_converted(str(converted_path), converted, info, report)
    seconds["calibration"] = round(time.perf_counter() - start, 2)
    calibrated = _judge(converted, original, dataset, no_accuracy, "plan applied and "
                        "calibrated", say)
    accuracy = {"calibrated": calibrated[0], "fine_tuned": None}
    agreement = {"calibrated": calibrated[1], "fine_tuned": None}
    model_file = converted_path
    if epochs:
        start = time.perf_counter()
        teacher = _teacher_file(ref, original, info, out_dir)
        model_file = _fine_tune(converted_path, teacher, out_dir / "finetune", dataset, epochs,
                                lr, batch_size, threads, say is print, no_accuracy is not None,
                                data_options)
        seconds["fine_tune"] = round(time.perf_counter() - start, 2)
        converted, _ = load_model(str(model_file))
        accuracy["fine_tuned"], agreement["fine_tuned"] = _judge(
            converted, original, dataset, no_accuracy, "fine-tuned", say)
    return {"model": converted.eval(), "model_file": model_file, "accuracy": accuracy,
            "agreement": agreement if no_accuracy else {}}
