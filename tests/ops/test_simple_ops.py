"""Group, depthwise, depthwise-separable, stacked, SE and deformable convs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from leanconv.ops import (
    ChannelShuffle,
    DeformConv2d,
    DepthwiseConv2d,
    DepthwiseSeparableConv2d,
    GroupConv2d,
    SqueezeExcite,
    StackedConv2d,
)
from tests.helpers import count_params, receptive_mask


def test_group_conv_params_and_shuffle():
    conv = GroupConv2d(12, 24, 3, groups=4, shuffle=True)
    assert count_params(conv) == 24 * 12 // 4 * 9
    x = torch.randn(1, 12, 5, 5)
    torch.testing.assert_close(conv(x), ChannelShuffle(4)(conv.conv(x)))
    with pytest.raises(ValueError, match=r"in_channels=10 is not divisible by groups=4; "
                                         r"choose groups in \{1, 2\}"):
        GroupConv2d(10, 12, 3, groups=4)


def test_depthwise_separable_is_depthwise_then_pointwise():
    conv = DepthwiseSeparableConv2d(6, 10, 3, stride=2, depth_multiplier=2, bias=True)
    assert count_params(conv) == 6 * 2 * 9 + 12 * 10 + 10
    x = torch.randn(2, 6, 9, 9)
    dw = F.conv2d(x, conv.depthwise.weight, None, 2, 1, groups=6)
    expected = F.conv2d(dw, conv.pointwise.weight, conv.pointwise.bias)
    torch.testing.assert_close(conv(x), expected)
    with_norm = DepthwiseSeparableConv2d(6, 10, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU)
    assert isinstance(with_norm.norm, nn.BatchNorm2d) and isinstance(with_norm.act, nn.ReLU)


def test_depthwise_conv_validation():
    assert DepthwiseConv2d(4, 8).groups == 4
    with pytest.raises(ValueError, match="out_channels=6 is not a multiple of in_channels=4"):
        DepthwiseConv2d(4, 6)


@pytest.mark.parametrize("k,dilation", [(5, 1), (7, 1), (5, 2)])
def test_stacked_conv_receptive_field_and_params(k, dilation):
    c = 8
    conv = StackedConv2d(c, c, k, dilation=dilation)
    assert count_params(conv) == 9 * c * c * (k - 1) // 2
    x = torch.randn(1, c, 15, 15)
    depends = receptive_mask(conv, x, 0, 7, 7).any(0)
    rows, cols = depends.nonzero().T
    radius = dilation * (k - 1) // 2
    assert rows.min() == 7 - radius and rows.max() == 7 + radius
    assert cols.min() == 7 - radius and cols.max() == 7 + radius


def test_stacked_saving_two_3x3_vs_5x5():
    c = 16
    assert count_params(StackedConv2d(c, c, 5)) == 18 * c * c
    assert count_params(nn.Conv2d(c, c, 5, bias=False)) == 25 * c * c


def test_stacked_errors():
    with pytest.raises(ValueError, match="kernel_size=4"):
        StackedConv2d(4, 4, 4)
    with pytest.raises(ValueError, match="padding=0"):
        StackedConv2d(4, 4, 5, padding=0)


def test_squeeze_excite():
    se = SqueezeExcite(32, rd_ratio=0.25)
    assert count_params(se) == 2 * 32 * 8 + 8 + 32
    x = torch.randn(2, 32, 5, 5)
    gate = torch.sigmoid(se.expand(torch.relu(se.reduce(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(se(x), x * gate)
    with pytest.raises(ValueError, match="rd_ratio=0"):
        SqueezeExcite(8, rd_ratio=0)


@pytest.mark.parametrize("modulated", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_deform_with_zero_offsets_is_a_standard_conv(modulated, stride):
    conv = DeformConv2d(4, 6, 3, stride=stride, bias=True, modulated=modulated)
    x = torch.randn(2, 4, 9, 8)
    expected = F.conv2d(x, conv.weight, conv.bias, stride, 1)
    torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=0)
    nn.init.normal_(conv.offset.weight, std=0.5)
    assert not torch.allclose(conv(x), expected, atol=1e-3)
    taps = 9 * (3 if modulated else 2)
    assert count_params(conv) == 6 * 4 * 9 + 6 + 4 * taps * 9 + taps
