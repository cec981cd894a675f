"""Fashion-MNIST from its IDX files (the Debian package ``dataset-fashion-mnist``).

H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
Machine Learning Algorithms", arXiv:1708.07747, 2017.

The IDX files are read by a small reader of our own (gzip + numpy, header checked: no library
reads IDX without pulling in a dataset framework), and the whole set is kept as a uint8 tensor
(about 47 MB).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from leanconv.data.dataset import Dataset, TensorImages

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
IMAGE_SHAPE = (1, 28, 28)
# per-channel mean and std of the 60,000 training images (on the 0-1 scale)
MEAN, STD = (0.2860,), (0.3530,)
HOW_TO_GET = ("install it with 'sudo apt-get install dataset-fashion-mnist' (or 'make data'), "
              "or point --data-dir / LEANCONV_DATA at a folder holding the four "
              "*-ubyte.gz files")


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
        if labels.max() >= len(CLASSES):
            raise ValueError(f"Fashion-MNIST {split} labels go up to {labels.max()}; expected "
                             f"0-{len(CLASSES) - 1}; {HOW_TO_GET}")

    def split(name: str) -> TensorImages:
        images = torch.from_numpy(arrays[f"{name}_images"].copy()).unsqueeze(1)
        return TensorImages(images, torch.from_numpy(arrays[f"{name}_labels"].astype(np.int64)))

    return Dataset(split("train"), split("test"), CLASSES, MEAN, STD, "fashion-mnist")
