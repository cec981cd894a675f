"""The C++ mixed depthwise kernel against its pure-PyTorch reference, and where it is used."""

import importlib.util
import shutil
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from leanconv.kernels import build
from leanconv.kernels.mixed_depthwise import (
    fits_one_pass,
    mixed_depthwise_conv2d,
    native_applies,
    reference_mixed_depthwise_conv2d,
)
from leanconv.ops import DepthwiseConv2d, MixConv2d, split_channels

HAS_NINJA = shutil.which("ninja") is not None or importlib.util.find_spec("ninja") is not None
if build.native_disabled():
    NO_NATIVE = f"{build.ENV_SWITCH}=0 disables the C++ kernels"
elif shutil.which("c++") is None or not HAS_NINJA:
    NO_NATIVE = ("no C++ compiler or ninja: the kernels cannot be built (leanconv then runs "
                 "the reference path, which the rest of the suite tests)")
else:
    NO_NATIVE = ""
needs_native = pytest.mark.skipif(bool(NO_NATIVE), reason=NO_NATIVE)


def _weights(channels, kernel_sizes):
    sizes = split_channels(channels, len(kernel_sizes))
    return [torch.randn(c, 1, k, k) for c, k in zip(sizes, kernel_sizes, strict=True)]


def _conv_ops(fn):
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {event.name for event in prof.events()}


@needs_native
def test_the_extension_builds_here():
    # CI has a compiler: a build failure must fail loudly, not fall back silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build.native() is not None


@needs_native
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("shape,kernel_sizes", [
    ((8, 256, 28, 28), (3, 5, 7, 9)),
    ((2, 60, 7, 9), (3, 5)),        # 30-channel groups: partial 16-lane blocks
    ((1, 37, 40, 35), (3, 5, 7)),   # uneven split, width not a tile multiple
    ((3, 20, 5, 33), (1, 11)),      # smallest and largest supported kernels
    ((2, 5, 1, 1), (3,)),           # one pixel: everything is padding
    ((1, 48, 17, 16), (9,)),        # one group = a plain depthwise conv
])
@pytest.mark.parametrize("with_bias", [False, True])
def test_kernel_matches_reference(layout, shape, kernel_sizes, with_bias):
    x = torch.randn(shape)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weights = _weights(shape[1], kernel_sizes)
    bias = torch.randn(shape[1]) if with_bias else None
    with torch.no_grad():
        forced = build.native().mixed_depthwise_conv2d(x, weights, bias)
        expected = reference_mixed_depthwise_conv2d(x, weights, bias)
    assert forced.shape == expected.shape
    if layout == "channels_last":
        assert forced.is_contiguous(memory_format=torch.channels_last)
    scale = expected.abs().max().item()
    torch.testing.assert_close(forced, expected, atol=1e-5 * scale, rtol=0)


@needs_native
def test_empty_batch():
    x = torch.randn(0, 8, 5, 5)
    out = build.native().mixed_depthwise_conv2d(x, _weights(8, (3, 5)), None)
    assert out.shape == (0, 8, 5, 5)


@needs_native
def test_mixconv_runs_one_kernel_without_split_or_concat():
    mix = MixConv2d(64, kernel_size=(3, 5, 7, 9)).eval()
    x = torch.randn(2, 64, 14, 14)
    with torch.no_grad():
        ops = _conv_ops(lambda: mix(x))
        expected = torch.cat([conv(part) for conv, part in
                              zip(mix.convs, x.split(mix.in_splits, 1), strict=True)], 1)
        torch.testing.assert_close(mix(x), expected, atol=1e-5, rtol=0)
    assert "leanconv::mixed_depthwise_conv2d" in ops
    assert "aten::convolution" not in ops and "aten::cat" not in ops


@needs_native
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("shape,kernel_sizes", [
    ((2, 60, 9, 7), (3, 5)), ((3, 20, 5, 33), (1, 11)), ((2, 64, 14, 14), (3, 5, 7, 9)),
    ((2, 48, 17, 16), (9,)),
])
def test_gradients_match_reference(layout, shape, kernel_sizes):
    x = torch.randn(shape)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    weights = [w.requires_grad_(True) for w in _weights(shape[1], kernel_sizes)]
    bias = torch.randn(shape[1], requires_grad=True)
    y = mixed_depthwise_conv2d(x, weights, bias)
    expected = reference_mixed_depthwise_conv2d(x, weights, bias)
    native_path = native_applies(x, weights, bias)
    assert (type(y.grad_fn).__name__ == "_MixedDepthwiseBackward") is native_path
    assert native_path is not (len(kernel_sizes) == 1 and layout == "channels_last")
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, bias, *weights], dy)
    expected_grads = torch.autograd.grad(expected, [x, bias, *weights], dy)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5 * want.abs().max().item(), rtol=0)


@needs_native
def test_only_the_needed_gradients_are_computed():
    x = torch.randn(1, 16, 8, 8)  # a first layer: no input gradient
    weights = [w.requires_grad_(True) for w in _weights(16, (3, 5))]
    y = mixed_depthwise_conv2d(x, weights)
    y.sum().backward()
    assert x.grad is None and all(w.grad is not None for w in weights)


@needs_native
def test_double_backward_matches_reference():
    # a gradient penalty: d/dw of |dL/dx|^2 needs a differentiable backward
    x = torch.randn(1, 16, 8, 8, requires_grad=True)
    weights = [w.requires_grad_(True) for w in _weights(16, (3, 5))]
    penalties = []
    for conv in (mixed_depthwise_conv2d, reference_mixed_depthwise_conv2d):
        (dx,) = torch.autograd.grad((conv(x, weights) ** 2).sum(), [x], create_graph=True)
        penalties.append(torch.autograd.grad((dx ** 2).sum(), weights))
    for got, want in zip(*penalties, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4 * want.abs().max().item(), rtol=0)


@needs_native
def test_mixconv_with_bias_on_some_groups():
    mix = MixConv2d(16, kernel_size=(3, 5)).eval()
    mix.convs[1].bias = nn.Parameter(torch.randn(8))
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        out = mix(x)
        expected = torch.cat([mix.convs[0](x[:, :8]), mix.convs[1](x[:, 8:])], 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs,fits", [
    ({}, True), ({"stride": 2}, False), ({"dilation": 2}, False),
    ({"out_channels": 16}, False), ({"kernel_size": 5}, True),
])
def test_fits_one_pass(kwargs, fits):
    assert fits_one_pass(DepthwiseConv2d(8, **kwargs)) is fits


@needs_native
def test_depthwise_conv_uses_the_kernel_where_it_measured_faster():
    dw = DepthwiseConv2d(32, kernel_size=3).eval()
    wide, narrow = torch.randn(1, 32, 28, 28), torch.randn(1, 32, 7, 7)
    with torch.no_grad():
        assert native_applies(wide, [dw.weight])
        assert not native_applies(narrow, [dw.weight])
        assert not native_applies(wide.contiguous(memory_format=torch.channels_last),
                                  [dw.weight])
        assert "aten::convolution" not in _conv_ops(lambda: dw(wide))
        torch.testing.assert_close(dw(wide), nn.Conv2d.forward(dw, wide), atol=1e-5, rtol=0)
    assert native_applies(wide, [dw.weight])  # training too: the kernels have a backward


def test_reference_path_when_disabled(monkeypatch):
    monkeypatch.setenv(build.ENV_SWITCH, "0")
    build.native.cache_clear()
    try:
        assert build.native() is None
        mix = MixConv2d(12, kernel_size=(3, 5)).eval()
        x = torch.randn(1, 12, 9, 9)
        with torch.no_grad():
            assert not native_applies(x, [c.weight for c in mix.convs])
            assert "aten::convolution" in _conv_ops(lambda: mix(x))
    finally:
        build.native.cache_clear()


def test_build_name_depends_on_the_sources_and_cpu(monkeypatch):
    name = build.build_name()
    assert name.startswith("leanconv_native_")
    monkeypatch.setattr(build, "_cpu_flags", lambda: "flags : sse2")
    assert build.build_name() != name


def test_unsupported_inputs_take_the_reference_path():
    weights = _weights(8, (3, 5))
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        assert not native_applies(x.double(), [w.double() for w in weights])
        assert not native_applies(x[:, :, :, ::2], weights)  # neither layout
        assert not native_applies(x, _weights(8, (3, 13)))  # 13 not compiled
        out = mixed_depthwise_conv2d(x.double(), [w.double() for w in weights])
    torch.testing.assert_close(out, reference_mixed_depthwise_conv2d(
        x.double(), [w.double() for w in weights]))


@pytest.mark.parametrize("args,match", [
    ((torch.randn(8, 6, 6), None), "x=.*4-d"),
    ((torch.randn(1, 8, 6, 6), torch.randn(8, 1, 3, 3)), "weights must be a non-empty"),
    ((torch.randn(1, 8, 6, 6), [torch.randn(8, 1, 4, 4)]), r"weights\[0\].*odd"),
    ((torch.randn(1, 8, 6, 6), [torch.randn(6, 1, 3, 3)]), "cover 6 channels but x has 8"),
])
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        mixed_depthwise_conv2d(*args)


def test_bad_bias_is_named():
    with pytest.raises(ValueError, match=r"bias=\(3,\).*\(8,\)"):
        mixed_depthwise_conv2d(torch.randn(1, 8, 6, 6), _weights(8, (3,)), torch.randn(3))


def test_autocast_keeps_pytorch_semantics():
    mix = MixConv2d(16, kernel_size=(3, 5)).eval()
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not native_applies(x, [c.weight for c in mix.convs])
        assert mix(x).dtype == torch.bfloat16


@needs_native
def test_channels_last_large_image_is_cut_into_bands():
    # 300 x 300 with 11x11 kernels: the padded copy of the whole image would be 6 MB per
    # block; the kernel works on bands of rows (their seams must not show)
    x = torch.randn(1, 20, 300, 301).contiguous(memory_format=torch.channels_last)
    weights = _weights(20, (3, 11))
    bias = torch.randn(20)
    with torch.no_grad():
        out = build.native().mixed_depthwise_conv2d(x, weights, bias)
        expected = reference_mixed_depthwise_conv2d(x, weights, bias)
    torch.testing.assert_close(out, expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


@needs_native
def test_groups_with_the_same_kernel_size_share_channel_blocks():
    # (3, 3, 5) with 10 channels: the first block spans two groups of 3x3 kernels
    x = torch.randn(2, 10, 9, 9).contiguous(memory_format=torch.channels_last)
    weights = [torch.randn(4, 1, 3, 3), torch.randn(3, 1, 3, 3), torch.randn(3, 1, 5, 5)]
    with torch.no_grad():
        out = build.native().mixed_depthwise_conv2d(x, weights, None)
    torch.testing.assert_close(out, reference_mixed_depthwise_conv2d(x, weights), atol=1e-5,
                               rtol=0)


def test_group_hooks_keep_the_split_form():
    # pruning recomputes a group's weight in a forward pre-hook; the one-pass kernel does not
    # call the group convs, so MixConv must keep the split form for them to run
    mix = MixConv2d(16, kernel_size=(3, 5)).eval()
    prune.l1_unstructured(mix.convs[0], "weight", amount=0.5)
    x = torch.randn(1, 16, 10, 10)
    with torch.no_grad():
        assert mix._one_pass_weights() is None
        out = mix(x)
        masked = mix.convs[0].weight_orig * mix.convs[0].weight_mask
        expected = torch.cat([nn.functional.conv2d(x[:, :8], masked, padding=1, groups=8),
                              mix.convs[1](x[:, 8:])], 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
