"""From uint8 batches to model inputs: normalisation and training augmentation, per batch,
vectorised, on the training device (no per-image Python work in the training loop).

Training augmentation: a random crop of the image zero-padded by ``pad`` pixels (default
:func:`default_pad`: 2 pixels at 28x28, 4 at 64x64, 16 at 224x224) and a random horizontal
flip, in two batched ops. Evaluation: the image as stored (an image folder stores each image
resized and centre-cropped, :mod:`leanconv.data.image_folder`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def default_pad(size: int) -> int:
    """Padding of the random crop: about 7% of the side (2 pixels at 28, as for CIFAR's 32)."""
    return max(1, size // 14)


def prepare(images: torch.Tensor, device: torch.device | str, augment: bool,
            generator: torch.Generator | None = None, channels_last: bool = False, *,
            mean: Sequence[float], std: Sequence[float], pad: int | None = None
            ) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float on ``device``, normalised per channel by ``mean`` and ``std``
    (on the 0-1 scale); with ``augment``: a random crop of the ``pad``-padded image and a random
    horizontal flip per image."""
    x = images.to(device, non_blocking=True).float().div_(255)
    if len(mean) == 1:  # one channel: plain scalars, as fast as it gets
        x = x.sub_(mean[0]).div_(std[0])
    else:
        shape = (1, len(mean), 1, 1)
        x = x.sub_(torch.tensor(mean, device=device).view(shape)).div_(
            torch.tensor(std, device=device).view(shape))
    if augment:
        b, c, h, w = x.shape
        pad = default_pad(min(h, w)) if pad is None else pad
        shifts = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(device)
        flips = (torch.rand(b, generator=generator) < 0.5).to(device)
        padded = F.pad(x, (pad, pad, pad, pad))
        rows = (torch.arange(h, device=device)[None, :] + shifts[0][:, None])[:, None, :, None]
        cols = torch.arange(w, device=device)[None, :] + shifts[1][:, None]
        cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]
        x = padded[torch.arange(b, device=device)[:, None, None, None],
                   torch.arange(c, device=device)[None, :, None, None], rows, cols]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
