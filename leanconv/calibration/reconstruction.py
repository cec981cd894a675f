"""Local reconstruction by gradient descent: the fit of every operator without a
closed-form one.

CompConv (its units feed each other through a recursive tree of convs), stacked 3x3 convs
with a ReLU between, deformable convs (the sampling offsets enter non-linearly) and a
depthwise-separable conv with a norm or activation between its halves are not one linear
map of their weights, so there is no least-squares solve. Their own parameters are fitted
instead to the block-reconstruction objective

    min_theta  mean( (layer_theta(X) - Y)^2 )

on the layer's input ``X`` in the converted network and the original layer's full output
maps ``Y``, by Adam on random mini-batches of the calibration images, from the data-free
initialisation, keeping the best parameters seen (the loss on all images is evaluated at
the start and every few steps). This is the block-wise output reconstruction of BRECQ:
Y. Li, R. Gong, X. Tan, Y. Yang, P. Hu, Q. Zhang, F. Yu, W. Wang, S. Gu, "BRECQ: Pushing
the Limit of Post-Training Quantization by Block Reconstruction", ICLR 2021,
arXiv:2102.05426.

BatchNorms inside the layer are re-estimated on ``X`` before the descent (it runs in eval
mode, so they must hold real statistics) and again after it, their affine parameters
adjusted so that the layer computes the same function with the new statistics; the
re-estimation of the whole network that follows the fit then leaves the layer as fitted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from leanconv.calibration.batchnorm import batchnorms, recalibrate_batchnorm
from leanconv.calibration.rules import FitProblem, register_fit_rule

STEPS = 200
LR = 0.1  # Adam's step size relative to the root mean square of the layer's kernel weights
MINI_BATCH = 32
EVALUATIONS = 8  # full-loss evaluations during the descent (for keeping the best)


@torch.no_grad()
def _full_loss(layer: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        stop = start + batch_size
        total += float(F.mse_loss(layer(x[start:stop]), y[start:stop], reduction="sum"))
    return total / y.numel()


@torch.no_grad()
def _restat(layer: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Re-estimate the layer's BatchNorms on ``x``, keeping the function it computes (the
    affine parameters absorb the change of statistics)."""
    old = [(bn, bn.running_mean.clone(), bn.running_var.clone()) for bn in batchnorms(layer)]
    recalibrate_batchnorm(layer, x, batch_size)
    for bn, mean, var in old:
        if not bn.affine:
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            continue
        old_std, new_std = (var + bn.eps).sqrt(), (bn.running_var + bn.eps).sqrt()
        bn.bias += bn.weight * (bn.running_mean - mean) / old_std
        bn.weight *= new_std / old_std


def reconstruct(layer: nn.Module, problem: FitProblem, *, steps: int = STEPS, lr: float = LR,
                mini_batch: int = MINI_BATCH) -> str:
    """Fit ``layer``'s own parameters to ``problem.target_maps`` (module docstring); returns
    ``'reconstructed'``. ``lr`` is relative to the root mean square of the layer's kernel
    weights (so a layer's scale does not matter), cosine-decayed over ``steps``."""
    if problem.target_maps is None:
        raise ValueError(f"reconstruct: layer {problem.name!r} needs the full target maps; "
                         f"register its rule with full_maps=True")
    x, y = problem.inputs.detach(), problem.target_maps
    params = [p for p in layer.parameters() if p.requires_grad]
    if not params:
        return "unchanged (no parameters)"
    if batchnorms(layer):
        recalibrate_batchnorm(layer, x, problem.batch_size)
    generator = torch.Generator().manual_seed(problem.seed)
    best = _full_loss(layer, x, y, problem.batch_size)
    best_state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    every = max(1, steps // EVALUATIONS)
    kernels = [p.detach() for p in params if p.dim() > 1]
    scale = float(torch.cat([k.reshape(-1) for k in kernels]).square().mean().sqrt()) \
        if kernels else 1.0
    with torch.enable_grad():
        optimizer = torch.optim.Adam(params, lr=lr * (scale or 1.0))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        for step in range(steps):
            index = torch.randperm(x.shape[0], generator=generator)[:mini_batch]
            index = index.to(x.device)
            loss = F.mse_loss(layer(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if (step + 1) % every == 0 or step + 1 == steps:
                current = _full_loss(layer, x, y, problem.batch_size)
                if current < best:
                    best = current
                    best_state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    for param in params:
        param.grad = None
    layer.load_state_dict(best_state)
    if batchnorms(layer):
        _restat(layer, x, problem.batch_size)
    return "reconstructed"


@register_fit_rule(nn.Module, full_maps=True)
def fit_reconstruction(layer: nn.Module, problem: FitProblem) -> str:
    """The fallback rule: :func:`reconstruct`."""
    return reconstruct(layer, problem)
