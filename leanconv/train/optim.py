"""Optimiser, schedule and weight averaging for ``leanconv train``."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from leanconv.train.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only, not on norms and biases (1-d tensors)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.dim() <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum."""
    return torch.optim.SGD(param_groups(model, config.weight_decay), lr=config.lr,
                           momentum=config.momentum, nesterov=config.momentum > 0)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine to 0 (``cosine``), or the
    one-cycle shape (warm-up over 30% of the run, then cosine) for ``onecycle``."""
    if schedule == "onecycle":
        warmup = max(1, int(0.3 * total))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


MAX_WARMUP_FRACTION = 0.1


def warmup_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """``warmup_epochs`` in steps, at most :data:`MAX_WARMUP_FRACTION` of the run: a run
    shorter than its warm-up would otherwise end at its peak learning rate (one epoch over
    10,000 images with the default 1-epoch warm-up: 74.6% test accuracy, against 77-80% for
    a plain loop)."""
    total = config.epochs * steps_per_epoch
    return min(int(config.warmup_epochs * steps_per_epoch), int(MAX_WARMUP_FRACTION * total))


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                   steps_per_epoch: int) -> LambdaLR:
    """A per-step :class:`LambdaLR` following :func:`lr_factor`."""
    total = config.epochs * steps_per_epoch
    warmup = warmup_steps(config, steps_per_epoch)
    return LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup, config.schedule))


def make_ema(model: nn.Module, decay: float) -> AveragedModel:
    """Exponential moving average of the weights (and BN statistics)."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
