"""Contract every operator honours, checked through the factory for every spec kind."""

import re

import pytest
import torch

from leanconv.ops import create_conv

SPECS = ["standard", "dilated:d=2", "group:g=2,shuffle=1", "depthwise", "dwsep",
         "hetconv:p=4", "hetconv:p=2,layout=interleaved", "mixconv:k=3.5.7", "compconv:c0=8",
         "stacked", "deform", "deform:mod=1"]


def _build(spec, stride=1, k=3):
    # depthwise kinds need out a multiple of in: use 8 -> 16 for all
    return create_conv(spec, 8, 16, k if spec != "stacked" else 5, stride)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(7, 7), (8, 10)])
def test_shape_channels_last_and_backward(spec, stride, size):
    module = _build(spec, stride)
    x = torch.randn(2, 8, *size)
    y = module(x)
    assert y.shape == (2, 16, -(-size[0] // stride), -(-size[1] // stride))
    y_cl = module(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, atol=1e-5, rtol=1e-5)
    assert y_cl.is_contiguous(memory_format=torch.channels_last)  # the format is kept
    xg = x.clone().requires_grad_(True)
    module(xg).square().mean().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    assert all(p.grad is not None for p in module.parameters())


@pytest.mark.parametrize("spec", SPECS)
def test_wrong_input_raises_clear_error(spec):
    module = _build(spec)
    # leanconv's operators check channels and rank; a plain nn.Conv2d ('standard',
    # 'dilated', 'depthwise') keeps torch's own checks, which name the expected channels
    # and accept an unbatched (C, H, W) input.
    with pytest.raises((ValueError, RuntimeError), match=r"expected input.*(8, H, W|8 channels)"):
        module(torch.randn(1, 3, 8, 8))
    if not isinstance(module, torch.nn.Conv2d):
        with pytest.raises(ValueError, match=r"expected input of shape \(N, 8, H, W\)"):
            module(torch.randn(8, 8, 8))


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("name,value", [("stride", 0), ("dilation", -1), ("padding", "same"),
                                        ("in_channels", 0), ("out_channels", -4),
                                        ("kernel_size", 0), ("stride", 1.5)])
def test_invalid_common_arguments(spec, name, value):
    if spec.startswith("mixconv") and name == "padding":
        value = 1
    arguments = {"in_channels": 8, "out_channels": 16,
                 "kernel_size": 5 if spec == "stacked" else 3, name: value}
    # 'dilated:d=2' sets dilation itself: giving it again is refused as a clash
    message = "given both" if spec.startswith("dilated") and name == "dilation" else (
        f"{name}={value!r}")
    with pytest.raises(ValueError, match=re.escape(message)):
        create_conv(spec, arguments.pop("in_channels"), arguments.pop("out_channels"),
                    arguments.pop("kernel_size"), **arguments)
