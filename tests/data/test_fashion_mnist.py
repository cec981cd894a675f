import gzip

import numpy as np
import pytest
import torch

from leanconv.data.dataset import channel_stats
from leanconv.data.fashion_mnist import (
    CLASSES,
    DEFAULT_DIR,
    FILES,
    MEAN,
    STD,
    load_fashion_mnist,
    read_idx,
)


def _write_idx(path, array, magic=None):
    dims = array.ndim
    header = (magic if magic is not None else 0x0800 + dims).to_bytes(4, "big")
    header += b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _write_dataset(folder, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        _write_idx(folder / FILES[f"{split}_images"], rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / FILES[f"{split}_labels"], rng.integers(0, 10, (n,)))


def test_reader_and_env_variable(tmp_path, monkeypatch):
    _write_dataset(tmp_path)
    monkeypatch.setenv("LEANCONV_DATA", str(tmp_path))
    data = load_fashion_mnist()
    assert data.train.tensor.shape == (20, 1, 28, 28) and data.train.tensor.dtype == torch.uint8
    assert data.test.labels.shape == (10,) and data.test.labels.dtype == torch.int64
    assert data.classes == CLASSES and data.spec == "fashion-mnist" and data.image_shape == (
        1, 28, 28)


@pytest.mark.parametrize("damage,message", [
    ("missing", "is missing"),
    ("magic", "magic number 0x801, expected 0x803"),
    ("truncated", "holds 700 bytes of data"),
    ("not gzip", "is corrupt"),
])
def test_bad_files_name_the_file_and_the_fix(tmp_path, damage, message):
    _write_dataset(tmp_path)
    path = tmp_path / FILES["train_images"]
    if damage == "missing":
        path.unlink()
    elif damage == "magic":
        _write_idx(path, np.zeros((20, 28, 28)), magic=0x0801)
    elif damage == "truncated":
        with gzip.open(path, "wb") as handle:
            handle.write((0x0803).to_bytes(4, "big") + b"".join(
                d.to_bytes(4, "big") for d in (20, 28, 28)) + bytes(700))
    else:
        path.write_bytes(b"this is not gzip")
    with pytest.raises(ValueError, match=message) as info:
        load_fashion_mnist(tmp_path)
    assert str(path) in str(info.value) and "apt-get install dataset-fashion-mnist" in str(
        info.value)


def test_real_fashion_mnist():
    if not (DEFAULT_DIR / FILES["test_labels"]).is_file():
        pytest.skip("the Debian package dataset-fashion-mnist is not installed (make test "
                    "installs it)")
    data = load_fashion_mnist()
    assert data.train.tensor.shape == (60000, 1, 28, 28)
    assert data.test.tensor.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10
    # the stored normalisation is the training set's own (measured once, rounded)
    mean, std = channel_stats(data.train.tensor)
    assert abs(mean[0] - MEAN[0]) < 1e-4 and abs(std[0] - STD[0]) < 1e-4


def test_read_idx_labels(tmp_path):
    _write_idx(tmp_path / "l.gz", np.arange(10))
    assert read_idx(tmp_path / "l.gz", 1).tolist() == list(range(10))
