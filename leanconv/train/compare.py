"""``leanconv compare``: the same network trained with each operator on the same data,
accuracy next to cost.

For each conv spec (and seed): train (:func:`leanconv.train.train`); then profile each
operator's model (params, analytic and executed MACs, memory access) and measure the CPU
latencies of the folded models (as deployed: :func:`leanconv.deploy.latency.folded_side_by_side`)
at batch 1 and 32 side by side, in interleaved rounds, or of the models built in another
runtime and precision (:func:`leanconv.runtimes.timing.runtime_side_by_side`; int8 calibrated
on the data's training images). Writes results.csv / .json /
.md and two plots (accuracy vs analytic MACs, accuracy vs latency at batch 32) in the output
folder, and returns the rows.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from leanconv.cost.profile import profile
from leanconv.data.load import parse_data_spec
from leanconv.deploy.latency import folded_side_by_side
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info
from leanconv.runtimes import get_runtime
from leanconv.runtimes.timing import runtime_side_by_side
from leanconv.tables import format_table, records_table
from leanconv.train.config import TrainConfig
from leanconv.train.network import build_network
from leanconv.train.plots import accuracy_plot
from leanconv.train.trainer import load_data, train

COLUMNS = ("conv", "test_acc_mean", "test_acc_std", "seeds", "params", "macs_analytic",
           "macs_executed", "memory_access", "latency_b1_ms", "latency_b32_ms",
           "train_images_per_s", "train_seconds")
FOLDED = "folded"  # what the latency columns are when measured as before runtimes existed
CALIB_IMAGES = 64  # int8's calibration images (training images of the data)


def latency_label(runtime: str = "torch", precision: str | None = None) -> str:
    """What the latency columns measure: ``folded`` (PyTorch fp32, the folded models), else
    ``runtime precision``."""
    precision = precision or get_runtime("compare", runtime).precisions[0]
    return FOLDED if (runtime, precision) == ("torch", "fp32") else f"{runtime} {precision}"


def _costs(configs: dict[str, TrainConfig], threads: int, runtime: str = "torch",
           precision: str | None = None) -> dict[str, dict[str, Any]]:
    """Profile each operator's model and time them side by side at batch 1 and 32: folded,
    or built in ``runtime`` at ``precision`` (int8 calibrated on the data's first
    :data:`CALIB_IMAGES` training images)."""
    data = load_data(next(iter(configs.values())))
    models = {conv: build_network(config, data)[0] for conv, config in configs.items()}
    costs = {}
    for conv, model in models.items():
        totals = profile(model, (1, *data.image_shape)).totals
        costs[conv] = {key: totals[key] for key in ("params", "macs_analytic", "macs_executed",
                                                    "memory_access")}
    channels_last = next(iter(configs.values())).channels_last
    label = latency_label(runtime, precision)
    calibration = data.model_inputs(CALIB_IMAGES) if label.endswith(" int8") else None
    for batch in (1, 32):
        if label == FOLDED:
            timed = folded_side_by_side(models, (batch, *data.image_shape),
                                        channels_last=channels_last, threads=threads)
        else:
            timed = runtime_side_by_side(models, (batch, *data.image_shape),
                                         runtime=runtime, precision=label.split()[1],
                                         threads=threads, calibration=calibration,
                                         channels_last=channels_last, owner="compare")
        for conv, (median, _) in timed.items():
            costs[conv][f"latency_b{batch}_ms"] = median
    return costs


def markdown_table(rows: list[dict[str, Any]], latency_in: str = FOLDED) -> str:
    """The results as a Markdown table (accuracy in %, MACs in M, latency in ms;
    ``latency_in``: what the latency was measured in, :func:`latency_label`)."""
    header = ("conv", "test acc % (mean ± std)", "seeds", "params", "MMACs analytic",
              "MMACs executed", "M elements moved", f"latency b1 ms ({latency_in})",
              f"latency b32 ms ({latency_in})",
              "train img/s")
    return format_table(header, ([
        r["conv"], f"{100 * r['test_acc_mean']:.2f} ± {100 * r['test_acc_std']:.2f}",
        r["seeds"], f"{r['params']:,}", f"{r['macs_analytic'] / 1e6:.2f}",
        f"{r['macs_executed'] / 1e6:.2f}", f"{r['memory_access'] / 1e6:.2f}",
        f"{r['latency_b1_ms']:.2f}", f"{r['latency_b32_ms']:.2f}",
        f"{r['train_images_per_s']:.0f}"] for r in rows), "md")


def compare(base: TrainConfig, convs: list[str], seeds: list[int], out: Path, *,
            runtime: str = "torch", precision: str | None = None) -> list[dict]:
    """Train ``base`` once per conv and seed; write and return the result rows. The
    latencies are measured in ``runtime`` at ``precision`` (:mod:`leanconv.runtimes`;
    default: PyTorch fp32, the folded models)."""
    get_runtime("compare", runtime, precision)  # before any training
    label = latency_label(runtime, precision)
    if parse_data_spec(base.data)[0] == "images":
        raise ValueError(f"compare: data={base.data!r} has no labels; the comparison ranks "
                         f"operators by test accuracy, which needs labelled images "
                         f"(fashion-mnist, imagefolder:DIR)")
    threads = base.threads or torch.get_num_threads()
    rows, configs = [], {}
    for conv in convs:
        runs = []
        for seed in seeds:
            run_dir = out / f"{conv.replace(':', '_').replace(',', '_')}-seed{seed}"
            config = replace(base, conv=None if conv == "standard" else conv, seed=seed,
                             out=str(run_dir), resume=False)
            print(f"== {conv}, seed {seed}", flush=True)
            runs.append(train(config))
            if runs[-1]["test_acc"] is None:  # a label-free run: distillation alone
                raise ValueError(f"compare: {runs[-1]['no_accuracy']}; the comparison ranks "
                                 f"operators by test accuracy, which needs images labelled "
                                 f"with the classes of the teacher")
        configs[conv] = config
        accs = [r["test_acc"] for r in runs]
        rows.append({
            "conv": conv, "test_acc_mean": statistics.fmean(accs),
            "test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "seeds": len(seeds),
            "train_images_per_s": statistics.fmean(r["images_per_s"] for r in runs),
            "train_seconds": statistics.fmean(r["seconds"] for r in runs),
        })
    costs = _costs(configs, threads, runtime, precision)
    rows = [{**row, **costs[row["conv"]]} for row in rows]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.csv", records_table(rows, COLUMNS, "csv") + "\n")
    atomic_write_text(out / "results.json", json.dumps(
        {"model": base.model, "config": base.to_dict(), "seeds": seeds,
         "machine": machine_info(threads, base.device), "latency_in": label, "rows": rows},
        indent=2))
    atomic_write_text(out / "results.md", markdown_table(rows, label) + "\n")
    title = f"{base.model} on {base.data} ({len(seeds)} seed(s))"
    accuracy_plot(rows, "macs_analytic", "analytic MACs per image", out / "acc_vs_macs.png",
                  title)
    accuracy_plot(rows, "latency_b32_ms",
                  f"latency at batch 32, {label}, {threads} CPU threads (ms)",
                  out / "acc_vs_latency.png", title)
    return rows
