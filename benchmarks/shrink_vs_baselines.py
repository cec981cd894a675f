"""``leanconv shrink`` against the baselines, and how good its latency model is.

Part ``accuracy`` (a trained Fashion-MNIST model, ``--model``): for each target speed-up,
three ways to the same measured latency, each fine-tuned the same way (``--epochs`` with
distillation from the original, one-cycle at ``--lr``, leanconv's trainer):

* **shrink**: :func:`leanconv.shrink` (per-layer choice from measured latency and
  sensitivity);
* **uniform**: one spec on every layer shrink may change; of the specs whose folded model
  measures at least the target, the one of least summed sensitivity (the criterion shrink
  minimises; the fastest spec when none reaches the target), calibrated like shrink's plan;
* **torch-pruning**: structured pruning with Torch-Pruning 1.6.1 (L2 magnitude group
  importance through its dependency graph, the classifier kept), the channel ratio bisected
  until its folded model measures the target speed-up.

It also reports how well sensitivity ranks single-layer conversions by their real test
accuracy drop (Spearman correlation).

Part ``latency`` (``--latency-models``): the latency table's predicted speed-up against the
folded model's, measured in turns with the folded original (paired ratios), for 20 random
plans and the plans chosen at several speed-ups (for random-weight models the chosen plans
use the MACs each layer keeps as their loss), on each model and batch; both with the table
calibrated in the model (:func:`leanconv.search.correction.calibrate`, whose random plans
have another seed than these) and with the table alone.

    python benchmarks/shrink_vs_baselines.py --part accuracy --model runs/teacher-resnet20/best.pt
    python benchmarks/shrink_vs_baselines.py --part latency

Results go to ``benchmarks/results/shrink_vs_baselines_<part>.json``.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leanconv.bench.baselines import free_baselines
from leanconv.calibration import fit_converted
from leanconv.checkpoint import load_checkpoint
from leanconv.converter import KEEP, convert, save_converted
from leanconv.cost.latency import torch_threads
from leanconv.data.load import dataset_for_model
from leanconv.deploy.latency import folded_speedups
from leanconv.io import atomic_write_text
from leanconv.loading import load_model
from leanconv.machine import machine_info
from leanconv.runtimes import RUNTIMES, get_runtime, time_artifacts
from leanconv.search import Target, TargetUnreachable, shrink
from leanconv.search.candidates import KXK_CANDIDATES, search_layers
from leanconv.search.correction import calibrate
from leanconv.search.deployment import Deployment, specs_of
from leanconv.search.latency_table import measure_table
from leanconv.search.selection import checked_plan
from leanconv.train import TrainConfig, train
from leanconv.train.distributed import DistContext
from leanconv.train.evaluate import evaluate

RESULTS = Path(__file__).parent / "results"
RETEST = 5  # plans measured a second time, for the measurement's own spread


def _speedups(original: nn.Module, models: dict[str, nn.Module], shape: tuple[int, ...],
              threads: int) -> dict[str, float]:
    """Measured speed-up of each model over ``original``, folded, each timed in turns with
    the original (paired per-round ratios)."""
    timed = folded_speedups(original, models, shape, threads=threads)
    return {name: value.speedup for name, value in timed.items()}


def _fine_tune(init: str | nn.Module, teacher: str, out: Path, args: argparse.Namespace
               ) -> dict[str, Any]:
    """leanconv's trainer from ``init`` (a file; or a module, for the pruned network, which
    no leanconv file describes: the trainer's network builder is swapped for this one run)."""
    if (out / "summary.json").is_file():  # a finished run of the same benchmark
        return json.loads((out / "summary.json").read_text())
    network = {"init": init} if isinstance(init, str) else {"model": teacher}
    config = TrainConfig(**network, teacher=teacher, epochs=args.epochs, lr=args.lr,
                         schedule="onecycle", threads=args.threads, out=str(out),
                         progress=False)
    if isinstance(init, str):
        return train(config)
    from leanconv.train import trainer

    built = trainer.build_network
    trainer.build_network = lambda config, data, num_classes=None: (
        copy.deepcopy(init), {"conv": "torch-pruning"}, ["pruned by Torch-Pruning"])
    try:
        return train(config)
    finally:
        trainer.build_network = built


def _prune(model: nn.Module, ratio: float, shape: tuple[int, ...]) -> nn.Module:
    import torch_pruning as tp

    pruned = copy.deepcopy(model).eval()
    head = [m for m in pruned.modules() if isinstance(m, nn.Linear)][-1]
    # the residual width is left alone (resnet20_cifar's zero-padding shortcuts are no
    # layers its dependency graph can follow): the first conv of each block is pruned, and
    # with it the second conv's inputs, the usual way of pruning ResNets
    kept = [m for name, m in pruned.named_modules()
            if isinstance(m, nn.Conv2d) and ".conv1." not in f"{name}."]
    pruner = tp.pruner.MetaPruner(pruned, torch.randn(shape[1:]).unsqueeze(0),
                                  importance=tp.importance.MagnitudeImportance(p=2),
                                  pruning_ratio=ratio, ignored_layers=[head, *kept])
    pruner.step()
    # leanconv's blocks check their input's channels against the count they were built with:
    # give them the pruned count (Torch-Pruning changes the layers, not their containers)
    for module in pruned.modules():
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        if convs and not isinstance(module, nn.Conv2d) and isinstance(
                getattr(module, "in_channels", None), int):
            module.in_channels = convs[0].in_channels
    return pruned


def _pruned_for(model: nn.Module, target: float, shape: tuple[int, ...],
                measure: Callable[[nn.Module], float]) -> tuple[nn.Module, float, float]:
    """Bisect the channel ratio until the pruned model measures ``target`` (within 2%) by
    ``measure`` (a pruned model's speed-up over the original, where it is deployed)."""
    low, high, best = 0.0, 0.9, None
    for _ in range(7):
        ratio = (low + high) / 2
        pruned = _prune(model, ratio, shape)
        speedup = measure(pruned)
        if speedup >= target:
            best, high = (pruned, ratio, speedup), ratio
            if speedup <= target * 1.02:
                break
        else:
            low = ratio
    if best is None:
        return pruned, ratio, speedup
    return best


def _spearman(x: list[float], y: list[float]) -> float:
    def ranks(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=values.__getitem__)
        result = [0.0] * len(values)
        for rank, i in enumerate(order):
            result[i] = float(rank)
        return result

    return statistics.correlation(ranks(x), ranks(y))


def _sensitivity_ranking(model: nn.Module, info: Any, data: Any, report: dict[str, Any]
                         ) -> dict[str, Any]:
    """Spearman of sensitivity against the test accuracy drop of single-layer conversions
    (dwsep and group:g=4,shuffle=1 on every layer), fitted as shrink fits them."""
    images = data.model_inputs(512)
    base = evaluate(model, data.test, data, 1000, DistContext())["acc"]
    kl, drop = [], []
    for row in report["layers"]:
        for spec in ("dwsep", "group:g=4,shuffle=1"):
            if spec not in row["candidates"]:
                continue
            converted, _ = convert(model, {row["name"]: spec})
            fit_converted(model, converted, [row["name"]], images[:256])
            kl.append(row["candidates"][spec]["sensitivity"])
            drop.append(base - evaluate(converted, data.test, data, 1000, DistContext())["acc"])
    return {"pairs": len(kl), "spearman": _spearman(kl, drop), "kl": kl, "accuracy_drop": drop}


def _cached(path: Path, compute: Any) -> dict[str, Any]:
    """``compute()``, stored at ``path`` and read from there when a run is repeated."""
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    atomic_write_text(path, json.dumps(value, indent=2))
    return value


def _shrunk(args: argparse.Namespace, out: Path, target: float, baselines: bool = False
            ) -> dict[str, Any]:
    """shrink's report.json for ``target`` in ``--runtime`` and ``--precision`` (a finished
    run in ``out`` is reused)."""
    if not (out / "report.json").is_file():
        shrink(args.model, out=str(out), speedup=target, batch=args.batch,
               threads=args.threads, epochs=args.epochs, lr=args.lr, progress=print,
               runtime=args.runtime, precision=args.precision, baselines=baselines)
    return json.loads((out / "report.json").read_text())


def accuracy_part(args: argparse.Namespace) -> dict[str, Any]:
    model, info = load_model(args.model)
    model.eval()
    data = dataset_for_model(info, None)
    shape = (args.batch, *info.input_shape(1)[1:])
    out = Path(args.work)
    rows = []
    ranking = None
    for target in args.targets:
        try:
            report = _shrunk(args, out / f"shrink-{target}", target)
        except TargetUnreachable as error:
            print(error, flush=True)
            rows.append({"target": target, "method": "shrink", "unreachable": str(error)})
            continue
        rows.append({"target": target, "method": "shrink", "speedup": report["speedup"],
                     "accuracy": report["accuracy"]["fine_tuned"],
                     "calibrated": report["accuracy"]["calibrated"],
                     "predicted_speedup": report["table"]["total_ms"] / report["predicted_ms"],
                     "checks": report["checks"], "seconds": report["seconds"],
                     "plan": report["plan"]})
        if ranking is None:
            ranking = _cached(out / "ranking.json",
                              lambda r=report: _sensitivity_ranking(model, info, data, r))
            print(f"sensitivity vs accuracy drop: Spearman {ranking['spearman']:.3f} "
                  f"over {ranking['pairs']} single-layer conversions", flush=True)
        # uniform: one spec on every layer shrink may change
        layers = {row["name"]: row for row in report["layers"]}
        uniform = {spec: {name: spec for name, row in layers.items() if spec in row["candidates"]}
                   for spec in KXK_CANDIDATES[1:]}
        converted = {spec: convert(model, plan)[0]
                     for spec, plan in uniform.items()}
        measured = _cached(out / f"uniform-{target}-speedups.json", lambda c=converted: _speedups(
            model, c, shape, args.threads))
        loss = {spec: sum(layers[n]["candidates"][spec]["sensitivity"] for n in plan)
                for spec, plan in uniform.items()}
        reaching = [spec for spec in uniform if measured[spec] >= target * 0.98]
        spec = (min(reaching, key=loss.get) if reaching
                else max(uniform, key=lambda s: measured[s]))
        calibration = data.model_inputs(1024)
        fitted, report_ = convert(model, uniform[spec],
                                  calibration=calibration)
        path = out / f"uniform-{target}.pt"
        save_converted(str(path), fitted, info, report_)
        summary = _fine_tune(str(path), args.model, out / f"uniform-{target}-ft", args)
        rows.append({"target": target, "method": f"uniform {spec}",
                     "speedup": measured[spec], "accuracy": summary["test_acc"],
                     "calibrated": evaluate(fitted, data.test, data, 1000, DistContext())["acc"],
                     "uniform_speedups": {s: measured[s] for s in uniform},
                     "uniform_loss": loss})
        # torch-pruning at the same measured speed-up
        found = _cached(out / f"prune-{target}.json", lambda r=report: dict(zip(
            ("ratio", "speedup"), _pruned_for(
                model, r["speedup"], shape,
                lambda p: _speedups(model, {"pruned": p}, shape, args.threads)["pruned"])[1:],
            strict=True)))
        ratio, speedup = found["ratio"], found["speedup"]
        pruned = _prune(model, ratio, shape)
        summary = _fine_tune(pruned, args.model, out / f"prune-{target}-ft", args)
        rows.append({"target": target, "method": "torch-pruning", "speedup": speedup,
                     "accuracy": summary["test_acc"], "pruning_ratio": ratio,
                     "calibrated": evaluate(pruned, data.test, data, 1000,
                                            DistContext())["acc"]})
        for row in rows[-3:]:
            print(f"target {target}x: {row['method']}: measured {row['speedup']:.2f}x, test "
                  f"accuracy {100 * row['accuracy']:.2f}%", flush=True)
    original = evaluate(model, data.test, data, 1000, DistContext())["acc"]
    return {"model": args.model, "original_accuracy": original, "batch": args.batch,
            "epochs": args.epochs, "rows": rows, "sensitivity_ranking": ranking}


def _deployment(args: argparse.Namespace, shape: tuple[int, ...]) -> Deployment:
    """Where the benchmark measures: ``--runtime`` and ``--precision`` (random images
    calibrate int8 timing builds: int8 speed does not depend on the values)."""
    precisions = tuple(args.precision) if args.precision else \
        RUNTIMES.get(args.runtime).precisions[:1]
    return Deployment(args.runtime, precisions, args.threads,
                      calibration=torch.randn((32, *shape[1:])), owner="shrink_vs_baselines")


def _latency_case(ref: str, shape: tuple[int, ...], args: argparse.Namespace
                  ) -> dict[str, Any]:
    threads, plans, seed = args.threads, args.plans, args.seed
    # latency does not depend on the weights: a zoo name is built for the input's channels
    model, _ = load_model(ref) if Path(ref).is_file() else load_model(ref, in_chans=shape[1])
    model.eval()
    deployment = _deployment(args, shape)
    layers = search_layers(model, shape)
    for layer in layers:
        layer.specs = deployment.choices(layer.specs)
    table = measure_table(model, layers, shape, threads=threads, deployment=deployment)
    raw = copy.deepcopy(table)
    calibrate(table, model, layers, shape, threads=threads, deployment=deployment)
    rng = random.Random(seed)
    cases = {f"random {i}": {layer.name: rng.choice(layer.specs) for layer in layers}
             for i in range(plans)}
    # the chosen plans are what shrink would train: selected, measured and refitted by its
    # pre-training checks (MACs kept as the loss), each predicted by its own refitted table
    macs_loss = {layer.name: {spec: table.macs[layer.name][spec] / 1e6 for spec in layer.specs}
                 for layer in layers}
    predictors, checks = {}, {}
    for target in (1.25, 1.5, 2.0):
        checked = copy.deepcopy(table)
        try:
            _, plan, checks[target], _ = checked_plan(
                model, layers, checked, Target("speedup", target), macs_loss, shape,
                deployment, lambda _: None)
        except TargetUnreachable as error:
            print(f"{ref} {shape}: {error}", flush=True)
            continue
        cases[f"chosen {target}x"], predictors[f"chosen {target}x"] = plan, checked
    models = {name: (convert(model, specs_of(plan))[0], plan) for name, plan in cases.items()}
    with torch_threads(threads):
        timed = deployment.speedups(model, models, shape)
        # test-retest: the first plans measured again, minutes later
        again = deployment.speedups(model, {name: models[name]
                                            for name in list(cases)[:RETEST]}, shape)
    retest = sorted(abs(again[name].speedup / timed[name].speedup - 1) for name in again)
    rows = []
    for name, plan in cases.items():
        predictor = predictors.get(name, table)
        predicted = predictor.total_ms / predictor.predict(plan)
        uncorrected = raw.total_ms / raw.predict(plan)
        measured = timed[name].speedup
        rows.append({"plan": name, "replaced": sum(s != KEEP for s in plan.values()),
                     "specs": dict(collections.Counter(plan.values())),
                     "predicted_speedup": predicted, "uncorrected_speedup": uncorrected,
                     "measured_speedup": measured, "original_ms": timed[name].reference_ms,
                     "measured_ms": timed[name].ms, "error": predicted / measured - 1,
                     "uncorrected_error": uncorrected / measured - 1})
    summary = {kind: _error_summary([r[kind] for r in rows])
               for kind in ("error", "uncorrected_error")}
    extra: dict[str, Any] = {}
    if args.pruning and args.runtime != "torch":  # latency only: the weights are random
        free = free_baselines(model, shape, threads=threads, runtimes=[args.runtime],
                              calibration=torch.randn((32, *shape[1:])))
        extra["baselines"] = free.to_json()
        print(free.markdown(), flush=True)
        extra["torch_pruning"] = [_pruned_latency(model, target, shape, deployment)
                                  for target in (1.25, 1.5, 2.0)]
    print(f"{ref} {shape}: {table.describe()}; predicted speed-up within 10% of measured: "
          f"{_describe(summary['error'])} of {len(rows)} plans (uncorrected table: "
          f"{_describe(summary['uncorrected_error'])}); the same plan measured twice: median "
          f"change {100 * statistics.median(retest):.1f}%, max {100 * retest[-1]:.1f}% "
          f"({len(retest)} plans)", flush=True)
    return {"model": ref, "input_shape": list(shape), "deployment": deployment.describe(),
            "table_ms": table.total_ms, "table_seconds": table.seconds,
            "calibration": table.calibration, "correction": table.correction,
            "mixed_ms": table.mixed_ms, **summary, "checks": checks,
            "retest_abs_change": {"median": statistics.median(retest), "max": retest[-1],
                                  "plans": len(retest)},
            "rows": rows, **extra}


def _pruned_latency(model: nn.Module, target: float, shape: tuple[int, ...],
                    deployment: Deployment) -> dict[str, Any]:
    """Torch-Pruning bisected to ``target`` in the deployment's model precision, then its
    speed-up over the original (in the model precision) in each precision of the runtime."""
    pruned, ratio, speedup = _pruned_in_runtime(model, target, shape, deployment)
    speedups = {precision: value for precision, (_, value) in _in_each_precision(
        model, pruned, shape, deployment, deployment.calibration).items()}
    print(f"torch-pruning at {target}x: ratio {ratio:.3f}, {speedup:.2f}x; in each precision: "
          + ", ".join(f"{p} {v:.2f}x" for p, v in speedups.items()), flush=True)
    return {"target": target, "pruning_ratio": ratio, "bisected_speedup": speedup,
            "speedup_in_precision": speedups}


def _error_summary(errors: list[float]) -> dict[str, float]:
    size = sorted(abs(e) for e in errors)
    return {"within_10pct": sum(e <= 0.10 for e in size) / len(size),
            "median_abs": statistics.median(size), "max_abs": size[-1]}


def _describe(summary: dict[str, float]) -> str:
    return (f"{100 * summary['within_10pct']:.0f}% (median |error| "
            f"{100 * summary['median_abs']:.1f}%, max {100 * summary['max_abs']:.1f}%)")


def _pruned_in_runtime(model: nn.Module, target: float, shape: tuple[int, ...],
                       deployment: Deployment) -> tuple[nn.Module, float, float]:
    """Torch-Pruning bisected until the pruned model, built in the deployment's runtime and
    precision, measures ``target`` over the original built there."""
    return _pruned_for(model, target, shape, lambda pruned: deployment.speedups(
        model, {"pruned": (pruned, {})}, shape)["pruned"].speedup)


def _in_each_precision(original: nn.Module, model: nn.Module, shape: tuple[int, ...],
                       deployment: Deployment, calibration: torch.Tensor
                       ) -> dict[str, tuple[Any, float]]:
    """``model`` built in each precision of the deployment's runtime (int8 calibrated on
    ``calibration``), each with its speed-up over ``original`` in the model precision, all
    timed in turns."""
    runtime = get_runtime("shrink_vs_baselines", deployment.runtime)
    built = {"original": runtime.build(original, shape, deployment.precisions[0],
                                       threads=deployment.threads)}
    for precision in runtime.available_precisions():
        built[precision] = runtime.build(model, shape, precision, threads=deployment.threads,
                                         calibration=calibration)
    timed = time_artifacts(built, torch.randn(shape), threads=deployment.threads, rounds=7,
                           min_run_time=0.2)
    return {precision: (artifact, timed.speedup(precision, "original"))
            for precision, artifact in built.items() if precision != "original"}


def _torch_pruning_row(model: nn.Module, data: Any, target: float, shape: tuple[int, ...],
                       deployment: Deployment, args: argparse.Namespace, out: Path
                       ) -> dict[str, Any]:
    """Torch-Pruning at ``target`` measured in the runtime's model precision, fine-tuned like
    shrink, then deployed in each precision of the runtime (int8 calibrated on 512 training
    images): test accuracy and speed-up over the original in the model precision, timed in
    turns."""
    found = _cached(out / f"prune-{target}.json", lambda: dict(zip(
        ("ratio", "speedup"), _pruned_in_runtime(model, target, shape, deployment)[1:],
        strict=True)))
    pruned = _prune(model, found["ratio"], shape)
    summary = _fine_tune(pruned, args.model, out / f"prune-{target}-ft", args)
    pruned.load_state_dict(load_checkpoint(out / f"prune-{target}-ft" / "best.pt")["model"])
    pruned.eval()
    deployed = {precision: {"speedup": speedup,
                            "accuracy": evaluate(artifact, data.test, data, 1000,
                                                 DistContext())["acc"]}
                for precision, (artifact, speedup) in _in_each_precision(
                    model, pruned, shape, deployment, data.model_inputs(512)).items()}
    best = max(deployed, key=lambda p: deployed[p]["speedup"])
    print(f"torch-pruning at {target}x in {deployment.describe()}: ratio "
          f"{found['ratio']:.3f}, {found['speedup']:.2f}x before fine-tuning; deployed: "
          + ", ".join(f"{p} {d['speedup']:.2f}x {100 * d['accuracy']:.2f}%"
                      for p, d in deployed.items()), flush=True)
    return {"target": target, "pruning_ratio": found["ratio"],
            "bisected_speedup": found["speedup"], "accuracy_fp32_model": summary["test_acc"],
            "deployed": deployed, "best_precision": best}


def runtime_part(args: argparse.Namespace) -> dict[str, Any]:
    """The free baselines of the trained ``--model`` at ``--batch`` (every installed runtime
    and precision, test accuracy), then shrink in ``--runtime`` / ``--precision`` at each
    target (over the runtime's first precision; with ``--over P``, each target times the
    measured speed-up of the unchanged model in the runtime's precision P), each fine-tuned
    ``--epochs`` and judged as deployed: the runtime's artifact, its test accuracy, its
    speed-up timed in turns with the original and with the runtime's fastest free baseline
    that is no less accurate."""
    model, info = load_model(args.model)
    model.eval()
    data = dataset_for_model(info, None)
    shape = (args.batch, *info.input_shape(1)[1:])
    free = free_baselines(model, shape, threads=args.threads,
                          calibration=data.model_inputs(512), dataset=data, progress=print)
    print(free.markdown(), flush=True)
    scale = free.row(args.runtime, args.over).speedup_in_runtime if args.over else 1.0
    out = Path(args.work) / f"{args.runtime}-{'-'.join(args.precision or [])}-b{args.batch}"
    rows = []
    for target in args.targets:
        wanted = round(target * scale, 3)
        try:
            report = _shrunk(args, out / f"shrink-{wanted}", wanted, baselines=True)
        except TargetUnreachable as error:
            print(error, flush=True)
            rows.append({"target": target, "speedup_target": wanted,
                         "unreachable": str(error)})
            continue
        deployed = report["deployed"]
        rows.append({"target": target, "speedup_target": wanted,
                     "measured_speedup": deployed["speedup"],
                     "accuracy": deployed["accuracy"],
                     "accuracy_fp32_model": report["accuracy"]["fine_tuned"],
                     "accuracy_calibrated": report["accuracy"]["calibrated"],
                     "answer": deployed["answer"], "baseline": deployed.get("baseline"),
                     "choices": dict(collections.Counter(report["plan"].values())),
                     "seconds": report["seconds"]})
        print(rows[-1], flush=True)
    pruning = []
    if args.pruning:  # at each target's measured speed-up (the target, where unreachable)
        deployment = _deployment(args, shape)
        for row in rows:
            pruning.append(_torch_pruning_row(
                model, data, round(row.get("measured_speedup", row["speedup_target"]), 3),
                shape, deployment, args, out))
    return {"model": args.model, "input_shape": list(shape), "runtime": args.runtime,
            "precision": args.precision, "over": args.over, "epochs": args.epochs,
            "baselines": free.to_json(), "shrink": rows, "torch_pruning": pruning}


def latency_part(args: argparse.Namespace) -> dict[str, Any]:
    cases = []
    for spec in args.latency_models:
        ref, _, shape = spec.partition("@")
        cases.append(_latency_case(ref, tuple(int(v) for v in shape.split("x")), args))
    return {"cases": cases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("accuracy", "latency", "runtime"), required=True)
    parser.add_argument("--runtime", default="torch", help="where latency is measured")
    parser.add_argument("--precision", nargs="+", help="the model's, then one per layer")
    parser.add_argument("--over", help="part runtime: targets over this precision's free "
                        "baseline in --runtime (e.g. int8)")
    parser.add_argument("--model", default="runs/teacher-resnet20/best.pt")
    parser.add_argument("--targets", type=float, nargs="+", default=[1.25, 1.5])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="runs/shrink-bench")
    parser.add_argument("--latency-models", nargs="+", default=[
        "resnet20_cifar@32x1x28x28", "resnet20_cifar@1x1x28x28",
        "torchvision:resnet50@1x3x224x224", "torchvision:resnet50@8x3x224x224"])
    parser.add_argument("--plans", type=int, default=20, help="random plans per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pruning", action="store_true", help="parts runtime and latency: "
                        "Torch-Pruning bisected in --runtime too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    part = {"accuracy": accuracy_part, "latency": latency_part, "runtime": runtime_part}
    result = part[args.part](args)
    result.update(machine=machine_info(args.threads), seconds=time.perf_counter() - start,
                  command="python " + " ".join(sys.argv))
    setting = "_".join([args.runtime, *(args.precision or [])])
    name = (args.part if args.runtime == "torch" and not args.precision
            else f"{args.part}_{setting}" if args.part == "latency"
            else f"{args.part}_{setting}_b{args.batch}")
    path = RESULTS / f"shrink_vs_baselines_{name}.json"
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
