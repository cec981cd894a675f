import pytest
import torch

from leanconv.ops import ChannelShuffle, channel_shuffle


@pytest.mark.parametrize("groups,channels", [(1, 6), (2, 6), (3, 6), (4, 8), (8, 24)])
def test_permutation_matches_shufflenet_definition(groups, channels):
    n = channels // groups
    perm = ChannelShuffle(groups).permutation(channels)
    expected = [i * n + j for j in range(n) for i in range(groups)]
    assert perm.tolist() == expected


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("groups", [2, 3, 6])
def test_inverse_is_exact(groups, channels_last):
    x = torch.randn(2, 12, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    shuffle = ChannelShuffle(groups)
    y = shuffle(x)
    assert not torch.equal(y, x) or groups in (1, 12)
    assert torch.equal(shuffle.inverse()(y), x)
    assert torch.equal(channel_shuffle(y, groups, inverse=True), x)
    assert torch.equal(shuffle.inverse().inverse()(x), y)


def test_channels_last_gives_same_values_and_keeps_format():
    x = torch.randn(2, 12, 5, 7)
    xl = x.contiguous(memory_format=torch.channels_last)
    y, yl = ChannelShuffle(3)(x), ChannelShuffle(3)(xl)
    assert torch.equal(y, yl)
    assert yl.is_contiguous(memory_format=torch.channels_last)
    assert y.is_contiguous()


def test_no_parameters_and_gradient_flows():
    shuffle = ChannelShuffle(2)
    assert not list(shuffle.parameters())
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    shuffle(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("groups", [0, -2, 2.5, True, "2"])
def test_invalid_groups(groups):
    with pytest.raises(ValueError, match="groups"):
        ChannelShuffle(groups)


def test_indivisible_channels_and_bad_rank():
    with pytest.raises(ValueError, match=r"not divisible by groups=4.*\[1, 2, 3, 6\]"):
        ChannelShuffle(4)(torch.randn(1, 6, 2, 2))
    with pytest.raises(ValueError, match=r"channel_shuffle: expected input of shape \(N, C,"):
        ChannelShuffle(2)(torch.randn(6, 2, 2))
