"""``leanconv train``: one model, one operator, Fashion-MNIST (or synthetic data), single
process or DDP; metrics.csv, config.json, summary.json, last.pt / best.pt in the run folder."""

from __future__ import annotations

import csv
import inspect
import io
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from leanconv.cost.profile import profile
from leanconv.io import atomic_write_text
from leanconv.models.registry import create_model, model_entry
from leanconv.train.checkpoint import load_checkpoint, save_checkpoint
from leanconv.train.config import TrainConfig
from leanconv.train.data import (
    Dataset,
    batches,
    load_fashion_mnist,
    prepare,
    shard_order,
    synthetic_dataset,
)
from leanconv.train.distributed import (
    DistContext,
    all_reduce_sum,
    average_buffers,
    init_distributed,
    ranks_in_sync,
    shutdown,
)
from leanconv.train.optim import make_ema, make_optimizer, make_scheduler

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                  "images_per_s", "seconds")
EpochHook = Callable[[int, dict[str, Any]], None]


def build_model(config: TrainConfig) -> nn.Module:
    """The zoo model for 1-channel 28x28 images and 10 classes (small-input stem)."""
    kwargs: dict[str, Any] = {"num_classes": 10, "in_chans": 1}
    if config.conv not in (None, "standard"):
        kwargs["conv"] = config.conv
    if "small_input" in inspect.signature(model_entry(config.model).build).parameters:
        kwargs["small_input"] = True
    return create_model(config.model, **kwargs)


def load_data(config: TrainConfig) -> Dataset:
    data = (synthetic_dataset(seed=config.seed) if config.data == "synthetic"
            else load_fashion_mnist(config.data_dir))
    return data.subset(config.subset)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
             context: DistContext, channels_last: bool = False, num_classes: int = 10
             ) -> dict[str, Any]:
    """Loss, accuracy and per-class accuracy on the whole set. Ranks take disjoint strided
    shards (no padding, so no duplicated images bias the result) and sums are reduced."""
    model.eval()
    order = torch.arange(context.rank, len(labels), context.world)
    sums = torch.zeros(2 + 2 * num_classes, dtype=torch.float64)
    for idx in batches(order, batch_size, drop_last=False):
        x = prepare(images[idx], context.device, False, channels_last=channels_last)
        y = labels[idx].to(context.device)
        out = model(x).float()
        loss = nn.functional.cross_entropy(out, y, reduction="sum")
        hit = out.argmax(1) == y
        sums[0] += loss.item()
        sums[1] += hit.sum().item()
        sums[2:2 + num_classes] += torch.bincount(y.cpu(), minlength=num_classes).double()
        sums[2 + num_classes:] += torch.bincount(y[hit].cpu(), minlength=num_classes).double()
    sums = all_reduce_sum(sums.to(context.device), context).cpu()
    count = sums[2:2 + num_classes]
    return {"loss": (sums[0] / count.sum()).item(), "acc": (sums[1] / count.sum()).item(),
            "per_class_acc": (sums[2 + num_classes:] / count.clamp(min=1)).tolist(),
            "images": int(count.sum().item())}


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def train(config: TrainConfig, on_epoch_end: EpochHook | None = None) -> dict[str, Any]:
    """Train as ``config`` says; returns the summary (also written as summary.json).

    ``on_epoch_end(epoch, row)`` is called on every rank after each epoch's checkpoint.
    """
    context = init_distributed(config.device)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(config, context, on_epoch_end)
    finally:  # --deterministic must not outlive the run in a library call
        torch.use_deterministic_algorithms(deterministic)
        shutdown(context)


def _train(config: TrainConfig, context: DistContext, on_epoch_end: EpochHook | None
           ) -> dict[str, Any]:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("train: device='cuda' but no CUDA device is available; use 'cpu'")
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed, config.deterministic)
    out = Path(config.out) if config.out else None
    if config.resume and (out is None or not (out / "last.pt").is_file()):
        raise ValueError(f"train: --resume needs {out}/last.pt from an earlier run of the "
                         f"same --out folder")
    data = load_data(config)
    device = context.device
    model = build_model(config).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if context.distributed and device.startswith("cuda"):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = model
    if context.distributed:
        net = nn.parallel.DistributedDataParallel(model)
    shard_size = -(-len(data.train_y) // context.world)  # as shard_order pads it
    steps = max(1, shard_size // config.batch_size)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, steps)
    ema = make_ema(model, config.ema_decay) if config.ema else None
    use_cuda_amp = config.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda_amp)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    start_epoch, best_acc, rows, elapsed = 0, -1.0, [], 0.0
    if config.resume:
        state = load_checkpoint(out / "last.pt")
        if state["config"]["model"] != config.model or state["config"]["conv"] != config.conv:
            raise ValueError(f"train: {out}/last.pt is a run of {state['config']['model']} / "
                             f"conv={state['config']['conv']}, not {config.model} / "
                             f"conv={config.conv}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["rng"])
        start_epoch, best_acc = state["epoch"], state["best_acc"]
        rows, elapsed = list(state["metrics"]), state["seconds"]
    if context.is_main and out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(config.to_dict(), indent=2))
    deadline = time.monotonic() + 60 * config.max_minutes if config.max_minutes else None
    stopped, final = False, None
    for epoch in range(start_epoch, config.epochs):
        order = shard_order(len(data.train_y), epoch, config.seed, context.rank, context.world)
        augment = torch.Generator().manual_seed(config.seed * 7919 + epoch * 104729
                                                + context.rank)
        net.train()
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        start = time.monotonic()
        bar = tqdm(list(batches(order, config.batch_size, drop_last=True)),
                   desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
                   disable=None if config.progress and context.is_main else True)
        for idx in bar:
            x = prepare(data.train_x[idx], device, True, augment, config.channels_last)
            y = data.train_y[idx].to(device)
            with torch.autocast(device.split(":")[0], enabled=config.amp,
                                dtype=torch.float16 if use_cuda_amp else torch.bfloat16):
                logits = net(x)
                loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            # accumulate on the device: no host sync per step (only for the progress bar)
            sums += torch.stack([loss.detach().double() * len(y),
                                 (logits.argmax(1) == y).sum().double(),
                                 torch.tensor(float(len(y)), dtype=torch.float64,
                                              device=y.device)])
            if not bar.disable and bar.n % 20 == 0:
                seconds = time.monotonic() - start
                bar.set_postfix(loss=f"{(sums[0] / sums[2]).item():.3f}",
                                img_s=f"{sums[2].item() * context.world / seconds:.0f}")
            if deadline is not None and time.monotonic() > deadline:
                stopped = True
                break
        seconds = time.monotonic() - start
        sums = all_reduce_sum(sums, context).cpu()
        if not device.startswith("cuda"):
            average_buffers(model, context)
        evaluated = ema.module if ema is not None else model
        test = evaluate(evaluated, data.test_x, data.test_y, config.eval_batch_size, context,
                        config.channels_last)
        elapsed += seconds
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": (sums[0] / sums[2]).item(), "train_acc": (sums[1] / sums[2]).item(),
               "test_loss": test["loss"], "test_acc": test["acc"],
               "images_per_s": (sums[2] / max(seconds, 1e-9)).item(), "seconds": seconds}
        rows.append(row)
        final = test
        if context.is_main:
            if config.progress:
                print(f"epoch {epoch + 1}/{config.epochs}: train loss {row['train_loss']:.4f} "
                      f"acc {row['train_acc']:.4f} | test loss {row['test_loss']:.4f} acc "
                      f"{row['test_acc']:.4f} | {row['images_per_s']:.0f} img/s", flush=True)
            if out is not None:
                state = {"config": config.to_dict(), "epoch": epoch + 1, "model":
                         model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(),
                         "ema": ema.state_dict() if ema is not None else None,
                         "rng": torch.get_rng_state(), "best_acc": max(best_acc, test["acc"]),
                         "metrics": rows, "seconds": elapsed}
                save_checkpoint(out / "last.pt", state)
                if test["acc"] > best_acc:
                    save_checkpoint(out / "best.pt", state)
                _write_metrics(out / "metrics.csv", rows)
        best_acc = max(best_acc, test["acc"])
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
        if stopped:
            break
    if final is None:  # no epoch left to run (a resumed, finished run): evaluate once
        final = evaluate(ema.module if ema is not None else model, data.test_x, data.test_y,
                         config.eval_batch_size, context, config.channels_last)
    trained = sum(r["images_per_s"] * r["seconds"] for r in rows)
    summary = {
        "model": config.model, "conv": config.conv or "standard",
        "test_acc": final["acc"], "test_loss": final["loss"],
        "per_class_acc": dict(zip(data.classes, final["per_class_acc"], strict=True)),
        "best_test_acc": max(best_acc, final["acc"]), "epochs": len(rows),
        "stopped_by_time_limit": stopped, "seconds": elapsed,
        "images_per_s": trained / max(elapsed, 1e-9) * context.world,
        "params": sum(p.numel() for p in model.parameters()),
        "macs_analytic": profile(model, (1, 1, 28, 28)).totals["macs_analytic"],
        "world_size": context.world,
        "ranks_in_sync": ranks_in_sync(model, context),
    }
    if context.is_main and out is not None:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary
