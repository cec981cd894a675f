import pytest
import torch
from torch import nn

from leanconv.ops import MixConv2d, MixedGroupConv, split_channels
from tests.helpers import count_params


def test_one_kernel_size_is_a_depthwise_conv():
    mix = MixConv2d(6, 12, kernel_size=(5,), stride=2)
    dw = nn.Conv2d(6, 12, 5, 2, 2, groups=6, bias=False)
    dw.weight.data.copy_(mix.convs[0].weight.data)
    x = torch.randn(2, 6, 9, 8)
    torch.testing.assert_close(mix(x), dw(x), atol=1e-6, rtol=0)


def test_groups_are_depthwise_convs_of_their_channel_slices():
    mix = MixConv2d(10, kernel_size=(3, 5, 7))
    x = torch.randn(1, 10, 9, 9)
    expected = torch.cat([conv(part) for conv, part in
                          zip(mix.convs, x.split([4, 3, 3], 1), strict=True)], 1)
    assert mix.in_splits == [4, 3, 3]
    torch.testing.assert_close(mix(x), expected)


@pytest.mark.parametrize("channels,groups,split,expected", [
    (10, 3, "equal", [4, 3, 3]),
    (32, 4, "equal", [8, 8, 8, 8]),
    (32, 4, "exponential", [16, 8, 4, 4]),
    (30, 3, "exponential", [16, 7, 7]),
    (7, 2, "exponential", [4, 3]),
])
def test_split_channels(channels, groups, split, expected):
    assert split_channels(channels, groups, split) == expected


@pytest.mark.parametrize("kernel_sizes,split,multiplier,sizes", [
    ((3, 5, 7), "equal", 1, (12, 10, 10)),  # remainder to the first group
    ((3, 5, 7, 9), "exponential", 2, (16, 8, 4, 4)),  # 1/2, 1/4, 1/8, 1/8
])
def test_parameter_count_and_shapes(kernel_sizes, split, multiplier, sizes):
    c = 32
    mix = MixConv2d(c, c * multiplier, kernel_sizes, split=split)
    assert tuple(conv.in_channels for conv in mix.convs) == sizes
    assert count_params(mix) == multiplier * sum(
        s * k * k for s, k in zip(sizes, kernel_sizes, strict=True))
    for stride, size in [(1, 9), (2, 9), (2, 10)]:
        x = torch.randn(2, c, size, size)
        assert mix.__class__(c, c * multiplier, kernel_sizes, stride, split=split)(x).shape == (
            2, c * multiplier, -(-size // stride), -(-size // stride))


def test_dilated_variant_keeps_receptive_field_with_3x3_kernels():
    mix = MixConv2d(6, kernel_size=(3, 5, 7), dilated=True)
    assert [c.kernel_size for c in mix.convs] == [(3, 3)] * 3
    assert [c.dilation for c in mix.convs] == [(1, 1), (2, 2), (3, 3)]
    assert mix(torch.randn(1, 6, 8, 8)).shape == (1, 6, 8, 8)


def test_mixed_group_conv_uneven_groups():
    conv = MixedGroupConv(7, 5, kernel_size=(1, 3))
    assert conv.in_splits == [4, 3] and conv.out_splits == [3, 2]
    assert count_params(conv) == 4 * 3 * 1 + 3 * 2 * 9
    assert conv(torch.randn(2, 7, 6, 6)).shape == (2, 5, 6, 6)


def test_mixed_group_conv_even_groups_is_a_grouped_conv():
    conv = MixedGroupConv(8, 12, kernel_size=(1, 1))
    x = torch.randn(1, 8, 4, 4)
    weight = torch.cat([c.weight for c in conv.convs])
    torch.testing.assert_close(conv(x), nn.functional.conv2d(x, weight, groups=2))


@pytest.mark.parametrize("kwargs,message", [
    ({"kernel_size": ()}, "kernel_size=()"),
    ({"kernel_size": (3, 4)}, "odd int"),
    ({"split": "random"}, "split='random'"),
    ({"out_channels": 10}, "not a multiple of in_channels=4"),
    ({"kernel_size": (3, 5, 7, 9, 11)}, "too few for 5 groups"),
])
def test_mixconv_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixConv2d(**{"in_channels": 4, **kwargs})
