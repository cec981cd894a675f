import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from leanconv.ops import HetConv2d
from tests.helpers import count_params, receptive_mask


def test_p1_is_a_standard_conv():
    het = HetConv2d(6, 10, 3, p=1, stride=2, bias=True)
    conv = nn.Conv2d(6, 10, 3, 2, 1, bias=True)
    conv.weight.data.copy_(het.weight.data)
    conv.bias.data.copy_(het.bias.data)
    x = torch.randn(2, 6, 11, 10)
    torch.testing.assert_close(het(x), conv(x), atol=1e-5, rtol=0)
    assert count_params(het) == count_params(conv)


@pytest.mark.parametrize(
    "layout,k,stride,dilation,p",
    list(itertools.product(["interleaved", "block"], [3, 5], [1, 2], [1, 2], [2, 4])),
)
def test_equals_dense_conv_with_masked_weight(layout, k, stride, dilation, p):
    het = HetConv2d(8, 12, k, p=p, stride=stride, dilation=dilation, bias=True, layout=layout)
    x = torch.randn(2, 8, 13, 12)
    dense = het.to_dense_weight()
    expected = F.conv2d(x, dense, het.bias, stride, het.padding, dilation)
    torch.testing.assert_close(het(x), expected, atol=1e-5, rtol=0)
    # the dense weight has KxK support exactly where the layout says, 1x1 elsewhere
    corner = dense[:, :, 0, 0] != 0
    assert torch.equal(corner, het.kxk_mask())


@pytest.mark.parametrize("layout", ["interleaved", "block"])
def test_layout_probed_with_autograd(layout):
    """Which (filter, channel) pairs see neighbouring pixels is what the docstring says."""
    m, n, p = 8, 6, 2
    het = HetConv2d(m, n, 3, p=p, layout=layout)
    x = torch.randn(1, m, 5, 5)
    for j in range(n):
        depends = receptive_mask(het, x, j, 2, 2)
        neighbour = depends[:, 1, 2] | depends[:, 2, 1] | depends[:, 3, 3]
        if layout == "interleaved":
            expected = [(i - j) % p == 0 for i in range(m)]
        else:
            expected = [i // (m // p) == j // (n // p) for i in range(m)]
        assert neighbour.tolist() == expected
        assert depends[:, 2, 2].all()  # every channel reaches the filter (KxK or 1x1)


@pytest.mark.parametrize("m,n,k,p,bias", [(8, 8, 3, 4, False), (12, 6, 3, 3, True),
                                          (16, 32, 5, 8, False), (4, 4, 3, 4, True)])
def test_parameter_count_is_the_papers(m, n, k, p, bias):
    het = HetConv2d(m, n, k, p=p, bias=bias)
    assert count_params(het) == n * (m // p * k * k + m - m // p) + (n if bias else 0)


@pytest.mark.parametrize("p,k", [(1, 3), (2, 3), (4, 3), (8, 3), (4, 5)])
def test_macs_ratio_is_seed_equation_3(p, k):
    m = n = 32
    het = HetConv2d(m, n, k, p=p)
    assert het.macs_per_pixel() / (m * n * k * k) == pytest.approx(1 / p + (1 - 1 / p) / k**2)
    x = torch.randn(1, m, 6, 6)
    # FlopCounterMode counts addmm/baddbmm but not their in-place forms, which HetConv uses
    def gemm_flops(c_shape, a_shape, b_shape, *args, **kwargs):
        return 2 * math.prod(c_shape) * a_shape[-1]

    inplace = {torch.ops.aten.baddbmm_: gemm_flops, torch.ops.aten.addmm_: gemm_flops}
    with FlopCounterMode(display=False, custom_mapping=inplace) as counter:
        het(x)
    executed = counter.get_total_flops() // 2 // 36
    # the kernels also multiply the zero diagonal of the 1x1 weight: N*M/P extra
    assert executed == het.macs_per_pixel() + (n * m // p if p > 1 else 0)


def test_error_messages_name_argument_and_valid_values():
    with pytest.raises(ValueError, match=r"in_channels=30 is not divisible by p=4; "
                                         r"choose p in \{1, 2, 3, 5, 6, 10, 15, 30\}"):
        HetConv2d(30, 30, 3, p=4)
    with pytest.raises(ValueError, match=r"out_channels=10 is not divisible by p=4"):
        HetConv2d(8, 10, 3, p=4)
    with pytest.raises(ValueError, match=r"layout='diagonal'.*'interleaved', 'block'"):
        HetConv2d(8, 8, layout="diagonal")
    with pytest.raises(ValueError, match="padding='same'"):
        HetConv2d(8, 8, padding="same")
    with pytest.raises(ValueError, match=r"kernel_size=2 is invalid; expected an odd"):
        HetConv2d(8, 8, 2)
    with pytest.raises(ValueError, match=r"padding=2 is invalid.*0 <= padding <= 1"):
        HetConv2d(8, 8, 3, padding=2)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 8, H, W\), got "
                                         r"\(1, 4, 5, 5\)"):
        HetConv2d(8, 8)(torch.randn(1, 4, 5, 5))


def test_channels_last_and_backward():
    het = HetConv2d(8, 8, 3, p=4)
    x = torch.randn(2, 8, 7, 7)
    y = het(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y, het(x), atol=1e-5, rtol=0)
    y.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in het.parameters())


def test_state_dict_holds_only_parameters():
    het = HetConv2d(8, 8, 3, p=4)
    assert set(het.state_dict()) == {"weight", "weight_1x1"}
