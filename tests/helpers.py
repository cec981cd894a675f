"""Helpers shared by the tests (imported as ``tests.helpers``; pytest advises against importing
``conftest``)."""

from __future__ import annotations

import torch
from torch import nn

from leanconv.ops.create_conv import CONV_KINDS

EXAMPLE_INTS = "3.5"  # the value 'ints' spec parameters get in the generated specs


def operator_specs() -> list[str]:
    """One spec per registered kind, plus one per non-default value of each of its bool and
    choice parameters and one with each list parameter set: every operator and option the
    factory knows, taken from the registry, so that a new kind cannot escape the contract
    tests."""
    specs = []
    for name, kind in CONV_KINDS.items():
        specs.append(name)
        for param in kind.params:
            if param.type == "bool":
                specs.append(f"{name}:{param.name}=1")
            elif param.type == "choice":
                specs += [f"{name}:{param.name}={spelling}"
                          for spelling, value in param.choices.items()
                          if value != param.default and spelling == value]
            elif param.type == "ints":
                specs.append(f"{name}:{param.name}={EXAMPLE_INTS}")
    return specs


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def receptive_mask(module: nn.Module, x: torch.Tensor, out_channel: int, out_y: int,
                   out_x: int) -> torch.Tensor:
    """Bool (C_in, H, W): which input elements output (0, out_channel, out_y, out_x) depends on,
    probed with autograd (random weights make accidental zeros vanishingly unlikely)."""
    x = x.clone().requires_grad_(True)
    module(x)[0, out_channel, out_y, out_x].backward()
    return x.grad[0] != 0


def randomize_batchnorms(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so that folding has work to do."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                if module.weight is not None:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.5, 0.5)
    return model.eval()


def executed_ops(model: nn.Module, x: torch.Tensor) -> set[str]:
    """Names of the aten ops a forward pass runs (torch.profiler)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.no_grad(), torch.profiler.profile(activities=activities) as prof:
        model(x)
    return {event.key for event in prof.key_averages()}


def hand_made_checkpoint(path, legacy=False, **config_kwargs):
    """A training checkpoint as the trainer writes it, without training (``legacy``: without
    "built" and "data", as checkpoints were written before the trainer recorded them), for
    ``TrainConfig(data='synthetic', **config_kwargs)``; returns the model saved."""
    from leanconv.checkpoint import save_checkpoint
    from leanconv.train.config import TrainConfig
    from leanconv.train.network import build_network
    from leanconv.train.trainer import load_data

    config = TrainConfig(**{"data": "synthetic", **config_kwargs})
    data = load_data(config)
    model, built, _ = build_network(config, data)
    state = {"config": config.to_dict(), "epoch": 1, "model": model.state_dict()}
    if not legacy:
        state.update(built=built, data=data.describe())
    save_checkpoint(path, state)
    return model
