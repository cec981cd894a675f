import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from leanconv.ops import CompConv2d, adaptive_depth
from tests.helpers import count_params


@pytest.mark.parametrize("c_in,c0,depth", [(256, 128, 2), (256, 64, 3), (64, 128, 1),
                                           (1024, 128, 3), (192, 128, 1), (512, 128, 3)])
def test_adaptive_depth_is_seed_equation_6(c_in, c0, depth):
    assert adaptive_depth(c_in, c0) == depth
    assert CompConv2d(c_in, 256, c0=c0).depth == depth


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("c_out", [64, 100, 128, 256, 257])
def test_channels_follow_c_prim(depth, c_out):
    conv = CompConv2d(256, c_out, depth=depth)
    prim = math.ceil(c_out / (2 * (2**depth - 1)))
    assert conv.plan.prim == prim
    excess = 2 * (2**depth - 1) * prim - c_out
    # extra channels are trimmed from the tailing part X_A0, down to one channel, then from
    # the last identity part
    assert conv.plan.tail == max(1, prim - excess)
    spill = excess - (prim - conv.plan.tail)
    full = [2**i * prim for i in range(1, depth)]
    assert conv.plan.copies == ([*full[:-1], full[-1] - spill] if full else [])
    assert conv.plan.tail + prim + sum(conv.plan.copies) + sum(full) == c_out
    assert conv(torch.randn(1, 256, 6, 6)).shape == (1, c_out, 6, 6)


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_formula_matches_the_executed_kernels_and_the_weights(depth):
    """Two independent counts: torch's flop counter on the kernels that run, and the weights
    (each used once per output pixel at stride 1)."""
    conv = CompConv2d(128, 96, 3, depth=depth)
    with FlopCounterMode(display=False) as counter:
        conv(torch.randn(1, 128, 5, 5))
    assert counter.get_total_flops() // 2 == conv.macs_per_pixel() * 25
    assert count_params(conv) == conv.macs_per_pixel()


def test_cost_targets_of_the_paper():
    standard = 9 * 256 * 256
    assert CompConv2d(256, 256, c0=64).macs_per_pixel() / standard == pytest.approx(0.18, abs=0.02)
    assert CompConv2d(256, 256, c0=128).macs_per_pixel() / standard == pytest.approx(0.28,
                                                                                      abs=0.02)


def test_depth_zero_is_a_standard_conv():
    conv = CompConv2d(16, 32, 3, depth=0)
    assert isinstance(conv.primary, nn.Conv2d) and count_params(conv) == 16 * 32 * 9


@pytest.mark.parametrize("stride", [1, 2])
def test_identity_parts_are_exact_copies(stride):
    conv = CompConv2d(64, 64, 3, stride=stride, depth=3)
    x = torch.randn(2, 64, 9, 8)
    y = conv.shuffle.inverse()(conv(x))  # undo the final shuffle: units in order
    plan = conv.plan
    source = x[..., ::stride, ::stride]
    start_out, start_in = plan.tail + plan.prim, 0
    for copies in plan.copies:
        torch.testing.assert_close(y[:, start_out:start_out + copies],
                                   source[:, start_in:start_in + copies], rtol=0, atol=0)
        start_out += 2 * copies
        start_in += copies


@pytest.mark.parametrize("kwargs,message", [
    ({"in_channels": 64, "out_channels": 8, "depth": 3}, "6 channels too many.*largest depth "
                                                         "that fits is 2"),
    ({"in_channels": 16, "out_channels": 256, "depth": 3}, "identity parts need 114"),
    ({"in_channels": 16, "out_channels": 16, "c0": 0}, "c0=0"),
    ({"in_channels": 16, "out_channels": 16, "depth": -1}, "depth=-1"),
    ({"in_channels": 16, "out_channels": 16, "kernel_size": 4}, "odd kernel size"),
])
def test_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompConv2d(**kwargs)
