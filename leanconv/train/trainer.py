"""``leanconv train``: one model (any :func:`leanconv.load_model` reference, fitted to the
data by :mod:`leanconv.train.network`), one operator, Fashion-MNIST, an image folder or
synthetic data, optionally from a file's weights (``init``) and distilled from a teacher
(:mod:`leanconv.train.distill`); single process or DDP; metrics.csv, config.json,
summary.json, last.pt / best.pt in the run folder.

A label-free run (distillation alone from a teacher whose classes the data's labels are not,
:func:`leanconv.train.network.load_teacher`) uses no labels: its loss is the distillation
term, and it is scored by top-1 agreement with the teacher and the KL divergence from it
(:func:`leanconv.train.evaluate.evaluate_agreement`) where a labelled run has accuracy
(:data:`LABEL_FREE_COLUMNS`)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from leanconv.checkpoint import load_checkpoint, save_checkpoint
from leanconv.cost.profile import profile
from leanconv.data import Dataset, load_dataset, prepare, shard_order
from leanconv.io import atomic_write_text
from leanconv.tables import records_table
from leanconv.train.config import TrainConfig
from leanconv.train.distill import distillation_loss
from leanconv.train.distributed import (
    DistContext,
    all_reduce_sum,
    average_buffers,
    init_distributed,
    ranks_in_sync,
    shutdown,
)
from leanconv.train.evaluate import evaluate, evaluate_agreement
from leanconv.train.network import build_network, load_teacher
from leanconv.train.optim import make_ema, make_optimizer, make_scheduler

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                  "images_per_s", "seconds")
LABEL_FREE_COLUMNS = ("epoch", "lr", "train_loss", "train_agreement", "test_kl",
                      "test_agreement", "images_per_s", "seconds")
EpochHook = Callable[[int, dict[str, Any]], None]


def load_data(config: TrainConfig, progress: bool = False) -> Dataset:
    """The data ``config`` names (:func:`leanconv.data.load_dataset`), its first ``subset``
    training images."""
    return load_dataset(config.data, data_dir=config.data_dir, image_size=config.image_size,
                        in_chans=config.in_chans, val_split=config.val_split,
                        cache_mb=config.cache_mb, skip_bad_images=config.skip_bad_images,
                        workers=config.workers, progress=progress).subset(config.subset)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _write_metrics(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    atomic_write_text(path, records_table(rows, columns, "csv") + "\n")


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


@dataclass
class _Run:
    """One training run's state: what :func:`_set_up` builds, :func:`_resume` restores, every
    epoch advances and :func:`_checkpoint` saves."""

    config: TrainConfig
    context: DistContext
    out: Path | None  # the run folder; None: nothing is written
    data: Dataset
    model: nn.Module  # the network itself: its state dict is what checkpoints hold
    built: dict[str, Any]  # how load_model rebuilds it (build_network's record)
    log: list[str]  # what was adapted or converted to fit the data
    net: nn.Module  # what the batches go through: ``model`` or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    ema: AveragedModel | None
    scaler: torch.amp.GradScaler
    loss_fn: nn.Module
    amp_dtype: torch.dtype  # autocast's dtype when ``config.amp``
    teacher: nn.Module | None = None  # distilled from (eval mode, no gradients)
    teacher_acc: float | None = None  # its test accuracy (None in a label-free run)
    label_free: str | None = None  # why the run uses no labels (None: it does)
    start_epoch: int = 0
    best_acc: float = -1.0  # best test score: accuracy, or agreement when label-free
    rows: list[dict[str, Any]] = field(default_factory=list)  # metrics, one row per epoch
    elapsed: float = 0.0  # training seconds of the epochs in ``rows``

    @property
    def evaluated(self) -> nn.Module:
        """The model that is tested: the EMA average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def columns(self) -> tuple[str, ...]:
        """The metrics' columns: accuracy, or agreement with the teacher when label-free."""
        return LABEL_FREE_COLUMNS if self.label_free else METRIC_COLUMNS

    def test(self) -> dict[str, Any]:
        """The test split's result: :func:`evaluate` (accuracy), or in a label-free run
        :func:`evaluate_agreement` with the teacher; ``score`` is either's headline."""
        config, data = self.config, self.data
        if self.label_free:
            result = evaluate_agreement(self.evaluated, self.teacher, data.test, data,
                                        config.eval_batch_size, self.context,
                                        config.channels_last)
            return {**result, "score": result["agreement"]}
        result = evaluate(self.evaluated, data.test, data, config.eval_batch_size, self.context,
                          config.channels_last)
        return {**result, "score": result["acc"]}


def _train(config: TrainConfig, context: DistContext, on_epoch_end: EpochHook | None
           ) -> dict[str, Any]:
    run = _set_up(config, context)
    if config.resume:
        _resume(run)
    if context.is_main and run.out is not None:
        run.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.out / "config.json", json.dumps(config.to_dict(), indent=2))
    deadline = time.monotonic() + 60 * config.max_minutes if config.max_minutes else None
    stopped, final = False, None
    for epoch in range(run.start_epoch, config.epochs):
        sums, seconds, stopped = _train_epoch(run, epoch, deadline)
        row, final = _end_epoch(run, epoch + 1, sums, seconds)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
        if stopped:
            break
    if final is None:  # no epoch left to run (a resumed, finished run): evaluate once
        final = run.test()
    return _summary(run, final, stopped)


def _set_up(config: TrainConfig, context: DistContext) -> _Run:
    """Check the device and the folder to resume from, set threads and seeds, then build the
    data, the model (DDP-wrapped when distributed), optimizer, scheduler, EMA, grad scaler
    and loss, in this order (the seed makes the model's initialisation reproducible)."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("train: device='cuda' but no CUDA device is available; use 'cpu'")
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed, config.deterministic)
    out = Path(config.out) if config.out else None
    if config.resume and (out is None or not (out / "last.pt").is_file()):
        raise ValueError(f"train: --resume needs {out}/last.pt from an earlier run of the "
                         f"same --out folder")
    data = load_data(config, progress=config.progress and context.is_main)
    device = context.device
    with torch.random.fork_rng(devices=[]):  # the student's initialisation, as without one
        teacher, teacher_info, label_free = load_teacher(config, data, device)
    model, built, log = build_network(
        config, data, teacher_info.num_classes if label_free else None)
    model = model.to(device)
    if context.is_main and config.progress:
        for line in log:
            print(f"model: {line}", flush=True)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if context.distributed and device.startswith("cuda"):
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = nn.parallel.DistributedDataParallel(model) if context.distributed else model
    shard_size = -(-len(data.train) // context.world)  # as shard_order pads it
    if shard_size < config.batch_size:
        per_rank = f" per process ({context.world} processes)" if context.world > 1 else ""
        raise ValueError(f"train: batch_size={config.batch_size} is larger than the "
                         f"{shard_size} training images{per_rank}, so an epoch would hold "
                         f"no full batch; choose --batch-size <= {shard_size}")
    steps = shard_size // config.batch_size
    optimizer = make_optimizer(model, config)
    use_cuda_amp = config.amp and device.startswith("cuda")
    teacher_acc = None if teacher is None or label_free else evaluate(
        teacher, data.test, data, config.eval_batch_size, context, config.channels_last)["acc"]
    if label_free and context.is_main and config.progress:
        print(f"label-free: {label_free}; learning from the teacher's outputs alone, scored "
              f"by agreement with it", flush=True)
    return _Run(config, context, out, data, model, built, log, net, optimizer,
                scheduler=make_scheduler(optimizer, config, steps),
                ema=make_ema(model, config.ema_decay) if config.ema else None,
                scaler=torch.amp.GradScaler("cuda", enabled=use_cuda_amp),
                loss_fn=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                amp_dtype=torch.float16 if use_cuda_amp else torch.bfloat16,
                teacher=teacher, teacher_acc=teacher_acc, label_free=label_free)


def _resume(run: _Run) -> None:
    """Restore ``run`` from its folder's last.pt (written by :func:`_checkpoint`): weights,
    optimizer, scheduler, EMA, RNG, epoch, best accuracy, metrics and seconds so far. The
    checkpoint must be a run of the same model and conv."""
    config, path = run.config, run.out / "last.pt"
    state = load_checkpoint(path)
    if state["config"]["model"] != config.model or state["config"]["conv"] != config.conv:
        raise ValueError(f"train: {path} is a run of {state['config']['model']} / "
                         f"conv={state['config']['conv']}, not {config.model} / "
                         f"conv={config.conv}")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.ema is not None and state.get("ema") is not None:
        run.ema.load_state_dict(state["ema"])
    torch.set_rng_state(state["rng"])
    run.start_epoch, run.best_acc = state["epoch"], state["best_acc"]
    run.rows, run.elapsed = list(state["metrics"]), state["seconds"]


def _train_epoch(run: _Run, epoch: int, deadline: float | None
                 ) -> tuple[torch.Tensor, float, bool]:
    """One pass over this rank's shard (epoch ``epoch``, counted from 0). Returns the sums of
    loss, correct predictions and images over all ranks, the seconds it took, and whether
    the ``deadline`` (a ``time.monotonic()`` value) stopped it before the end."""
    config, context, device = run.config, run.context, run.context.device
    order = shard_order(len(run.data.train), epoch, config.seed, context.rank, context.world)
    augment = torch.Generator().manual_seed(config.seed * 7919 + epoch * 104729 + context.rank)
    run.net.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    stopped, start = False, time.monotonic()
    data = run.data
    bar = tqdm(data.train.batches(order, config.batch_size, drop_last=True),
               total=len(order) // config.batch_size, desc=f"epoch {epoch + 1}/{config.epochs}",
               unit="batch", leave=False,
               disable=None if config.progress and context.is_main else True)
    for raw, labels in bar:
        x = prepare(raw, device, True, augment, config.channels_last, mean=data.mean,
                    std=data.std)
        y = labels.to(device)
        with torch.autocast(device.split(":")[0], enabled=config.amp, dtype=run.amp_dtype):
            logits = run.net(x)
            # a label-free run has no hard term (its labels are no classes of the model)
            loss = logits.new_zeros(()) if run.label_free else run.loss_fn(logits.float(), y)
            if run.teacher is not None:
                with torch.no_grad():
                    taught = run.teacher(x).float()
                loss = distillation_loss(logits.float(), taught, loss, config.distill,
                                         config.distill_temperature)
                if run.label_free:  # the hits below: agreement with the teacher
                    y = taught.argmax(1)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        # accumulate on the device: no host sync per step (only for the progress bar)
        sums += torch.stack([loss.detach().double() * len(y),
                             (logits.argmax(1) == y).sum().double(),
                             torch.tensor(float(len(y)), dtype=torch.float64, device=y.device)])
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
        average_buffers(run.model, context)
    return sums, seconds, stopped


def _end_epoch(run: _Run, epoch: int, sums: torch.Tensor, seconds: float
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """After epoch ``epoch`` (counted from 1): test, add the metrics row, print it and write
    the checkpoint (main rank), update the best accuracy; returns the row and the test
    result."""
    config, context = run.config, run.context
    test = run.test()
    run.elapsed += seconds
    train_loss, train_hits = (sums[0] / sums[2]).item(), (sums[1] / sums[2]).item()
    if run.label_free:
        scores = {"train_agreement": train_hits, "test_kl": test["kl"],
                  "test_agreement": test["agreement"]}
        said = (f"agreement with the teacher {train_hits:.4f} | test KL {test['kl']:.4f} "
                f"agreement {test['agreement']:.4f}")
    else:
        scores = {"train_acc": train_hits, "test_loss": test["loss"], "test_acc": test["acc"]}
        said = (f"acc {train_hits:.4f} | test loss {test['loss']:.4f} acc "
                f"{test['acc']:.4f}")
    row = {"epoch": epoch, "lr": run.optimizer.param_groups[0]["lr"],
           "train_loss": train_loss, **scores,
           "images_per_s": (sums[2] / max(seconds, 1e-9)).item(), "seconds": seconds}
    run.rows.append(row)
    if context.is_main:
        if config.progress:
            print(f"epoch {epoch}/{config.epochs}: train loss {train_loss:.4f} {said} | "
                  f"{row['images_per_s']:.0f} img/s", flush=True)
        if run.out is not None:
            _checkpoint(run, epoch, test["score"])
    run.best_acc = max(run.best_acc, test["score"])
    return row, test


def _checkpoint(run: _Run, epoch: int, test_acc: float) -> None:
    """Write last.pt (everything :func:`_resume` restores), best.pt as well when
    ``test_acc`` (the test score: agreement in a label-free run) beats the best so far, and
    metrics.csv."""
    state = {"config": run.config.to_dict(), "built": run.built, "data": run.data.describe(),
             "epoch": epoch, "model": run.model.state_dict(),
             "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
             "ema": run.ema.state_dict() if run.ema is not None else None,
             "rng": torch.get_rng_state(), "best_acc": max(run.best_acc, test_acc),
             "metrics": run.rows, "seconds": run.elapsed}
    save_checkpoint(run.out / "last.pt", state)
    if test_acc > run.best_acc:
        save_checkpoint(run.out / "best.pt", state)
    _write_metrics(run.out / "metrics.csv", run.rows, run.columns)


def _summary(run: _Run, final: dict[str, Any], stopped: bool) -> dict[str, Any]:
    """The run's summary (``final``: the last test result), also written as summary.json."""
    config, context, rows = run.config, run.context, run.rows
    trained = sum(r["images_per_s"] * r["seconds"] for r in rows)
    best = max(run.best_acc, final["score"])
    if run.label_free:
        scores = {"test_acc": None, "test_agreement": final["agreement"],
                  "test_kl": final["kl"], "best_test_agreement": best,
                  "no_accuracy": run.label_free}
    else:
        scores = {"test_acc": final["acc"], "test_loss": final["loss"],
                  "per_class_acc": dict(zip(run.data.classes, final["per_class_acc"],
                                            strict=True)),
                  "best_test_acc": best}
    summary = {
        "model": config.model, "conv": run.built["conv"] or "standard", **scores,
        "epochs": len(rows),
        "stopped_by_time_limit": stopped, "seconds": run.elapsed,
        "images_per_s": trained / max(run.elapsed, 1e-9) * context.world,
        "params": sum(p.numel() for p in run.model.parameters()),
        "macs_analytic": profile(run.model, (1, *run.data.image_shape)).totals["macs_analytic"],
        "teacher": config.teacher, "teacher_test_acc": run.teacher_acc,
        "data": config.data, "image_shape": list(run.data.image_shape),
        "classes": list(run.data.classes), "skipped_images": run.data.skipped,
        "adapted": run.log, "world_size": context.world,
        "ranks_in_sync": ranks_in_sync(run.model, context),
    }
    if context.is_main and run.out is not None:
        atomic_write_text(run.out / "summary.json", json.dumps(summary, indent=2))
    return summary
