import torch
from torch import nn


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
