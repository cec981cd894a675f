"""A synthetic stand-in for real images, for tests and smoke runs: each class is a fixed
random template plus noise, so a model learns it in a few steps."""

from __future__ import annotations

import torch

from leanconv._validate import check_int
from leanconv.data.dataset import Dataset, TensorImages, channel_stats


def synthetic_dataset(train: int = 2048, test: int = 512, seed: int = 0, *,
                      image_shape: tuple[int, int, int] = (1, 28, 28),
                      num_classes: int = 10) -> Dataset:
    """``train`` and ``test`` uint8 images of ``image_shape`` (C, H, W) in ``num_classes``
    classes (named ``class0``, ...); mean and std measured on the training images."""
    owner = "synthetic_dataset"
    for name, value in (("train", train), ("test", test), *zip("CHW", image_shape, strict=True)):
        check_int(owner, name, value)
    check_int(owner, "seed", seed, minimum=0)
    check_int(owner, "num_classes", num_classes, minimum=2)
    generator = torch.Generator().manual_seed(seed)
    templates = torch.rand(num_classes, *image_shape, generator=generator)

    def make(n: int) -> TensorImages:
        labels = torch.randint(num_classes, (n,), generator=generator)
        noise = torch.rand(n, *image_shape, generator=generator)
        images = (0.6 * templates[labels] + 0.4 * noise) * 255
        return TensorImages(images.to(torch.uint8), labels)

    train_set = make(train)
    mean, std = channel_stats(train_set.tensor)
    return Dataset(train_set, make(test), tuple(f"class{i}" for i in range(num_classes)), mean,
                   std, "synthetic")
