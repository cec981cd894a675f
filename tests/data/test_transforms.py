import pytest
import torch

from leanconv.data import prepare, shard_order
from leanconv.data.synthetic import synthetic_dataset
from leanconv.data.transforms import default_pad


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 20)])
def test_augmentation_is_a_padded_crop_and_flip(channels, size):
    data = synthetic_dataset(16, 1, image_shape=(channels, size, size))
    images = data.train.tensor
    mean, std = data.mean, data.std
    pad = default_pad(size)
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    out = prepare(images, "cpu", True, generator, mean=mean, std=std)
    generator.set_state(state)
    shifts = torch.randint(0, 2 * pad + 1, (2, 16), generator=generator)
    flips = torch.rand(16, generator=generator) < 0.5
    plain = prepare(images, "cpu", False, mean=mean, std=std)
    padded = torch.nn.functional.pad(plain, (pad,) * 4)
    for i in range(16):
        crop = padded[i, :, shifts[0, i]:shifts[0, i] + size, shifts[1, i]:shifts[1, i] + size]
        if flips[i]:
            crop = crop.flip(-1)
        torch.testing.assert_close(out[i], crop)
    # normalised by the training set's own statistics: zero mean, unit std per channel
    torch.testing.assert_close(plain.mean((0, 2, 3)), torch.zeros(channels), atol=0.02,
                               rtol=0)
    torch.testing.assert_close(plain.std((0, 2, 3)), torch.ones(channels), atol=0.02, rtol=0)
    assert prepare(images, "cpu", True, generator, channels_last=True, mean=mean,
                   std=std).is_contiguous(memory_format=torch.channels_last)


def test_default_pad_scales_with_the_image():
    assert [default_pad(s) for s in (28, 32, 64, 224, 8)] == [2, 2, 4, 16, 1]


def test_shards_cover_the_data_like_distributed_sampler():
    n = 103
    shards = [shard_order(n, 0, 1, rank, 4) for rank in range(4)]
    assert {len(s) for s in shards} == {26}
    assert set(torch.cat(shards).tolist()) == set(range(n))
    assert not torch.equal(shard_order(n, 0, 1), shard_order(n, 1, 1))  # reshuffled per epoch
    assert torch.equal(shard_order(n, 2, 1), shard_order(n, 2, 1))
