"""Re-estimating BatchNorm statistics on calibration images.

After a layer's weights change, the BatchNorms after it normalise with statistics of the old
network. :func:`recalibrate_batchnorm` resets them and averages the batch statistics of the
calibration images (``momentum=None``: PyTorch's cumulative moving average, each batch
weighted equally), the BatchNorms alone in train mode, so dropout and other train-time
behaviour stay off and the statistics are those of the network as it is evaluated.
"""

from __future__ import annotations

import torch
from torch import nn

from leanconv._validate import check_int, check_module


def check_images(owner: str, name: str, images: object) -> torch.Tensor:
    """Raise ValueError unless ``images`` is a non-empty 4-d floating-point tensor of finite
    values."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{owner}: {name} must be a torch.Tensor of images (N, C, H, W), got "
                         f"{type(images).__name__}")
    if images.dim() != 4 or not images.is_floating_point() or images.shape[0] < 1:
        raise ValueError(f"{owner}: {name} of shape {tuple(images.shape)} and dtype "
                         f"{images.dtype} is invalid; expected a float tensor (N, C, H, W) "
                         f"with N >= 1, normalised as the model expects")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{owner}: {name} holds NaN or infinite values")
    return images


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorms of ``model`` that keep running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 256
                          ) -> int:
    """Reset the running statistics of every BatchNorm of ``model`` and re-estimate them on
    ``images`` (module docstring), in forwards of ``batch_size`` images; every module's
    train/eval mode and every BatchNorm's momentum are restored afterwards. Returns the
    number of BatchNorms re-estimated (0: nothing to do, no forward run)."""
    owner = "recalibrate_batchnorm"
    check_module(owner, "model", model)
    check_images(owner, "images", images)
    check_int(owner, "batch_size", batch_size)
    norms = batchnorms(model)
    if not norms:
        return 0
    modes = [(m, m.training) for m in model.modules()]
    momenta = [(bn, bn.momentum) for bn in norms]
    try:
        model.eval()
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        for start in range(0, images.shape[0], batch_size):
            model(images[start:start + batch_size])
    finally:
        for module, training in modes:
            module.train(training)
        for bn, momentum in momenta:
            bn.momentum = momentum
    return len(norms)
