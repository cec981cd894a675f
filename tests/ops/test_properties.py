"""Property-based checks over random configurations: invariants hold for valid ones, and
invalid ones raise ValueError, never another exception."""

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leanconv.ops import CompConv2d, GroupConv2d, HetConv2d, MixConv2d, split_channels
from tests.helpers import count_params

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
channels = st.integers(1, 48)
small = st.integers(-2, 9)


def _output_side(size, stride):
    return -(-size // stride)


@SETTINGS
@given(m=channels, n=channels, k=st.sampled_from([1, 3, 5]), p=st.integers(1, 8),
       stride=st.integers(1, 2), size=st.integers(3, 9))
def test_hetconv_invariants(m, n, k, p, stride, size):
    if m % p or n % p:
        try:
            HetConv2d(m, n, k, p=p)
        except ValueError as error:
            assert "divisible by p" in str(error)
        else:
            raise AssertionError("expected ValueError")
        return
    het = HetConv2d(m, n, k, p=p, stride=stride)
    assert count_params(het) == n * (m // p * k * k + m - m // p)
    y = het(torch.randn(1, m, size, size))
    assert y.shape == (1, n, _output_side(size, stride), _output_side(size, stride))


@SETTINGS
@given(c_in=st.integers(1, 300), c_out=st.integers(1, 300), c0=st.sampled_from([16, 32, 64]),
       depth=st.one_of(st.none(), st.integers(0, 4)))
def test_compconv_invariants(c_in, c_out, c0, depth):
    try:
        conv = CompConv2d(c_in, c_out, 3, c0=c0, depth=depth)
    except ValueError as error:
        assert depth is not None and "depth" in str(error)
        return
    if conv.depth:
        plan = conv.plan
        assert plan.prim == math.ceil(c_out / (2 * (2**conv.depth - 1)))
        assert plan.prim + plan.tail + sum(plan.copies) + sum(plan.outs) == c_out
        assert sum(plan.copies) <= c_in
    assert count_params(conv) == conv.macs_per_pixel()
    assert conv(torch.randn(1, c_in, 4, 4)).shape == (1, c_out, 4, 4)


@SETTINGS
@given(c=st.integers(1, 64), ks=st.lists(st.sampled_from([1, 3, 5, 7, 9]), min_size=1,
                                         max_size=5),
       split=st.sampled_from(["equal", "exponential"]), mult=st.integers(1, 2))
def test_mixconv_invariants(c, ks, split, mult):
    sizes = split_channels(c, len(ks), split)
    assert sum(sizes) == c
    if min(sizes) < 1:
        try:
            MixConv2d(c, c * mult, ks, split=split)
        except ValueError as error:
            assert "too few" in str(error)
        else:
            raise AssertionError("expected ValueError")
        return
    mix = MixConv2d(c, c * mult, ks, split=split)
    assert count_params(mix) == mult * sum(s * k * k for s, k in zip(sizes, ks, strict=True))
    assert mix(torch.randn(1, c, 5, 5)).shape == (1, c * mult, 5, 5)


@SETTINGS
@given(m=small, n=small, k=small, g=small, stride=small, dilation=small)
def test_arbitrary_integers_never_raise_anything_but_valueerror(m, n, k, g, stride, dilation):
    for build in (
        lambda: GroupConv2d(m, n, k, groups=g, stride=stride, dilation=dilation),
        lambda: HetConv2d(m, n, k, p=g, stride=stride, dilation=dilation),
        lambda: CompConv2d(m, n, k, stride=stride, dilation=dilation, c0=g),
        lambda: MixConv2d(m, n, (k,), stride=stride, dilation=dilation),
    ):
        try:
            module = build()
        except ValueError:
            continue
        size = max(1, dilation * (k - 1) + 1)
        module(torch.randn(1, m, size, size))  # a valid construction runs
