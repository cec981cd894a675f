"""Fashion-MNIST (and a synthetic stand-in), held in memory and served as whole batches.

The IDX files are read by a small reader of our own (gzip + numpy, header checked), the whole
set is kept as a uint8 tensor (about 47 MB), and normalisation and augmentation (random crop
with 2-pixel padding, horizontal flip: both valid for clothing) run per batch, vectorised, on
the training device: no per-image Python work in the training loop.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
NUM_CLASSES = len(CLASSES)
IMAGE_SHAPE = (1, 28, 28)  # (C, H, W) of one image: what every model trained here takes
MEAN, STD = 0.2860, 0.3530
HOW_TO_GET = ("install it with 'sudo apt-get install dataset-fashion-mnist' (or 'make data'), "
              "or point --data-dir / LEANCONV_DATA at a folder holding the four "
              "*-ubyte.gz files")


@dataclass
class Dataset:
    """Images (N, *IMAGE_SHAPE) uint8 and labels (N,) int64, train and test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...] = CLASSES

    def subset(self, n: int | None) -> Dataset:
        """The first ``n`` training images (the test set is kept whole)."""
        if n is None:
            return self
        return Dataset(self.train_x[:n], self.train_y[:n], self.test_x, self.test_y,
                       self.classes)


def read_idx(path: Path, dims: int) -> np.ndarray:
    """Read one gzipped IDX file of unsigned bytes with ``dims`` dimensions."""
    if not path.is_file():
        raise ValueError(f"Fashion-MNIST file {path} is missing; {HOW_TO_GET}")
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"Fashion-MNIST file {path} is corrupt ({error}); {HOW_TO_GET}") from None
    header = 4 + 4 * dims
    if len(raw) < header:
        raise ValueError(f"Fashion-MNIST file {path} is truncated (no IDX header); {HOW_TO_GET}")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + dims:
        raise ValueError(f"Fashion-MNIST file {path} has magic number {magic:#x}, expected "
                         f"{0x0800 + dims:#x} (unsigned bytes, {dims} dimensions); {HOW_TO_GET}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f"Fashion-MNIST file {path} holds {len(raw) - header} bytes of data, "
                         f"its header says {shape}; {HOW_TO_GET}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """``data_dir``, else ``$LEANCONV_DATA``, else the Debian package's folder."""
    return Path(data_dir or os.environ.get("LEANCONV_DATA") or DEFAULT_DIR)


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Fashion-MNIST from ``resolve_data_dir(data_dir)``, validated."""
    folder = resolve_data_dir(data_dir)
    arrays = {key: read_idx(folder / name, 3 if key.endswith("images") else 1)
              for key, name in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[0] != labels.shape[0] or images.shape[1:] != IMAGE_SHAPE[1:]:
            raise ValueError(f"Fashion-MNIST {split} files disagree: images {images.shape}, "
                             f"labels {labels.shape}; {HOW_TO_GET}")
        if labels.max() >= NUM_CLASSES:
            raise ValueError(f"Fashion-MNIST {split} labels go up to {labels.max()}; expected "
                             f"0-{NUM_CLASSES - 1}; {HOW_TO_GET}")

    def images(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].copy()).unsqueeze(1)

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].astype(np.int64))

    return Dataset(images("train_images"), labels("train_labels"), images("test_images"),
                   labels("test_labels"))


def synthetic_dataset(train: int = 2048, test: int = 512, seed: int = 0) -> Dataset:
    """Random ``IMAGE_SHAPE`` images with learnable structure: each class is a fixed random
    template plus noise, so a model can learn it quickly (for tests and smoke runs)."""
    generator = torch.Generator().manual_seed(seed)
    templates = torch.rand(NUM_CLASSES, *IMAGE_SHAPE, generator=generator)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(NUM_CLASSES, (n,), generator=generator)
        noise = torch.rand(n, *IMAGE_SHAPE, generator=generator)
        images = (0.6 * templates[labels] + 0.4 * noise) * 255
        return images.to(torch.uint8), labels

    train_x, train_y = make(train)
    test_x, test_y = make(test)
    return Dataset(train_x, train_y, test_x, test_y)


def shard_order(n: int, epoch: int, seed: int, rank: int = 0, world: int = 1,
                shuffle: bool = True) -> torch.Tensor:
    """This rank's indices for ``epoch``, like ``DistributedSampler``: one permutation seeded
    by (seed, epoch), padded by repetition to a multiple of ``world``, then strided."""
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10007 + epoch))
    else:
        order = torch.arange(n)
    if world > 1:
        padded = -(-n // world) * world
        order = torch.cat([order, order[: padded - n]])[rank::world]
    return order


def batches(order: torch.Tensor, batch_size: int, drop_last: bool) -> Iterator[torch.Tensor]:
    """Index tensors of ``batch_size`` (the last one shorter unless ``drop_last``)."""
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def prepare(images: torch.Tensor, device: torch.device | str, augment: bool,
            generator: torch.Generator | None = None, channels_last: bool = False,
            pad: int = 2) -> torch.Tensor:
    """uint8 (B, 1, H, W) -> normalised float on ``device``; with ``augment``: a random crop
    of the ``pad``-padded image and a random horizontal flip per image, in two batched ops."""
    x = images.to(device, non_blocking=True).float().div_(255).sub_(MEAN).div_(STD)
    if augment:
        b, _, h, w = x.shape
        shifts = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(device)
        flips = (torch.rand(b, generator=generator) < 0.5).to(device)
        padded = F.pad(x, (pad, pad, pad, pad))
        rows = (torch.arange(h, device=device)[None, :] + shifts[0][:, None])[:, :, None]
        cols = torch.arange(w, device=device)[None, :] + shifts[1][:, None]
        cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, :]
        x = padded[torch.arange(b, device=device)[:, None, None], 0, rows, cols].unsqueeze(1)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
