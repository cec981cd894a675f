"""What every data source gives the trainer: a :class:`Dataset` of two :class:`ImageSet`
splits (uint8 images with int64 labels), the class names, and the per-channel mean and std
of the training images that normalise them.

An image set serves batches in any index order (:meth:`ImageSet.batches`): held in memory
(:class:`TensorImages`: indexing) or decoded from files as it goes
(:class:`leanconv.data.image_folder.FileImages`: a ``DataLoader`` with workers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from leanconv._validate import check_int
from leanconv.data.sampling import batches
from leanconv.data.transforms import prepare


class ImageSet(ABC):
    """A split: ``labels`` (N,) int64 known up front, images served as uint8 batches."""

    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    @property
    @abstractmethod
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image served."""

    @abstractmethod
    def batches(self, order: torch.Tensor, batch_size: int, drop_last: bool = False
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(images, labels)`` for consecutive ``batch_size`` slices of ``order``."""

    @abstractmethod
    def subset(self, n: int) -> ImageSet:
        """The first ``n`` images."""

    def take(self, n: int | None = None, batch_size: int = 256) -> torch.Tensor:
        """The first ``n`` images (all by default) as one uint8 tensor."""
        count = len(self) if n is None else min(n, len(self))
        parts = [x for x, _ in self.batches(torch.arange(count), batch_size)]
        return torch.cat(parts) if parts else torch.empty(0, *self.image_shape,
                                                          dtype=torch.uint8)


class TensorImages(ImageSet):
    """Images held in memory: uint8 (N, C, H, W) and labels (N,)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise ValueError(f"TensorImages: expected uint8 (N, C, H, W) images and N labels, "
                             f"got {images.dtype} {tuple(images.shape)} and "
                             f"{tuple(labels.shape)}")
        self.tensor, self.labels = images, labels

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.tensor.shape[1:])

    def batches(self, order: torch.Tensor, batch_size: int, drop_last: bool = False
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in batches(order, batch_size, drop_last):
            yield self.tensor[idx], self.labels[idx]

    def subset(self, n: int) -> TensorImages:
        return TensorImages(self.tensor[:n], self.labels[:n])


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...],
                                                                      tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) images, on the 0-1
    scale, accumulated in float64 over chunks (no float copy of the whole set)."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].double().div_(255)
        total += x.sum((0, 2, 3))
        squares += x.square().sum((0, 2, 3))
    count = max(1, images.numel() // images.shape[1])
    mean = total / count
    std = (squares / count - mean.square()).clamp(min=1e-12).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def conform(images: torch.Tensor, in_chans: int | None, size: int | None) -> torch.Tensor:
    """uint8 images with ``in_chans`` channels (1 -> 3 repeats the gray channel, 3 -> 1 takes
    the ITU-R 601 luma) at ``size`` x ``size`` (bilinear, antialiased; a non-square image is
    resized on its shorter side, then centre-cropped); None keeps the images' own."""
    channels = images.shape[1]
    if in_chans is not None and in_chans != channels:
        if (channels, in_chans) == (1, 3):
            images = images.expand(-1, 3, -1, -1).contiguous()
        elif (channels, in_chans) == (3, 1):
            luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            images = (images.float() * luma).sum(1, keepdim=True).round_().to(torch.uint8)
        else:
            raise ValueError(f"in_chans={in_chans} is invalid for {channels}-channel images; "
                             f"valid: 1 or 3")
    if size is not None and tuple(images.shape[2:]) != (size, size):
        h, w = images.shape[2:]
        scale = size / min(h, w)
        new = (max(size, round(h * scale)), max(size, round(w * scale)))
        parts = [F.interpolate(images[i:i + 1024].float(), size=new, mode="bilinear",
                               antialias=True, align_corners=False)
                 for i in range(0, len(images), 1024)]
        resized = torch.cat(parts).round_().clamp_(0, 255).to(torch.uint8)
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        images = resized[:, :, top:top + size, left:left + size].contiguous()
    return images


@dataclass(frozen=True)
class Dataset:
    """A training and a test split, class names, and the normalisation (per-channel
    ``mean`` and ``std`` of the training images, 0-1 scale). ``spec``: how it was asked for
    (``fashion-mnist``, ``imagefolder:DIR``, ``images:DIR``, ``synthetic``); ``classes`` is
    empty for unlabeled images (``images:DIR``: every label 0); ``skipped``: unreadable images
    left out (``--skip-bad-images``); ``note``: how it was read (cache, streaming)."""

    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    spec: str
    skipped: int = 0
    note: str = ""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model sees."""
        return self.train.image_shape

    @property
    def num_classes(self) -> int:
        """The number of classes; 0 for unlabeled images (``images:DIR``)."""
        return len(self.classes)

    @property
    def labeled(self) -> bool:
        """Whether the images have class labels (not ``images:DIR``)."""
        return bool(self.classes)

    def subset(self, n: int | None) -> Dataset:
        """The first ``n`` training images (the test set is kept whole)."""
        if n is None:
            return self
        check_int("Dataset.subset", "n", n)
        return replace(self, train=self.train.subset(n))

    def normalized_with(self, mean: Sequence[float], std: Sequence[float]) -> Dataset:
        """The same images normalised by a model's own statistics (those it was trained
        with), which must have one value per channel."""
        channels = self.image_shape[0]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"normalisation mean={list(mean)} std={list(std)} has "
                             f"{len(mean)} value(s); the images have {channels} channel(s)")
        return replace(self, mean=tuple(mean), std=tuple(std))

    def model_inputs(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` training images (all by default) as the model sees them when it is
        evaluated: normalised float, no augmentation (calibration data)."""
        if n is not None:
            check_int("Dataset.model_inputs", "n", n)
        return prepare(self.train.take(n), "cpu", False, mean=self.mean, std=self.std)

    def describe(self) -> dict[str, Any]:
        """What a checkpoint records of its data: spec, classes, mean, std, image shape."""
        return {"spec": self.spec, "classes": list(self.classes), "mean": list(self.mean),
                "std": list(self.std), "image_shape": list(self.image_shape)}
