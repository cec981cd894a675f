import gzip

import numpy as np
import pytest
import torch

from leanconv.train.data import (
    DEFAULT_DIR,
    FILES,
    load_fashion_mnist,
    prepare,
    read_idx,
    shard_order,
    synthetic_dataset,
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
    assert data.train_x.shape == (20, 1, 28, 28) and data.train_x.dtype == torch.uint8
    assert data.test_y.shape == (10,) and data.test_y.dtype == torch.int64


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
    assert data.train_x.shape == (60000, 1, 28, 28) and data.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.test_y).tolist() == [1000] * 10


def test_read_idx_labels(tmp_path):
    _write_idx(tmp_path / "l.gz", np.arange(10))
    assert read_idx(tmp_path / "l.gz", 1).tolist() == list(range(10))


def test_augmentation_is_a_padded_crop_and_flip():
    images = synthetic_dataset(16, 1).train_x
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    out = prepare(images, "cpu", True, generator)
    generator.set_state(state)
    shifts = torch.randint(0, 5, (2, 16), generator=generator)
    flips = torch.rand(16, generator=generator) < 0.5
    plain = prepare(images, "cpu", False)
    padded = torch.nn.functional.pad(plain, (2, 2, 2, 2))
    for i in range(16):
        crop = padded[i, :, shifts[0, i]:shifts[0, i] + 28, shifts[1, i]:shifts[1, i] + 28]
        if flips[i]:
            crop = crop.flip(-1)
        torch.testing.assert_close(out[i], crop)
    assert abs(plain.mean().item()) < 1.5
    assert prepare(images, "cpu", True, generator, channels_last=True).is_contiguous(
        memory_format=torch.channels_last)


def test_shards_cover_the_data_like_distributed_sampler():
    n = 103
    shards = [shard_order(n, 0, 1, rank, 4) for rank in range(4)]
    assert {len(s) for s in shards} == {26}
    assert set(torch.cat(shards).tolist()) == set(range(n))
    assert not torch.equal(shard_order(n, 0, 1), shard_order(n, 1, 1))  # reshuffled per epoch
    assert torch.equal(shard_order(n, 2, 1), shard_order(n, 2, 1))
