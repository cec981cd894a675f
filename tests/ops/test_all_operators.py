"""Contract every operator honours, checked through the factory for every registered spec kind
and option (``tests.helpers.operator_specs`` reads them from the registry)."""

import inspect
import re

import pytest
import torch
from torch import nn

from leanconv.blocks import (
    BasicBlock,
    Bottleneck,
    ConvNormAct,
    InvertedResidual,
    ShuffleUnitV1,
    ShuffleUnitV2,
)
from leanconv.ops import CONV_KINDS, create_conv
from tests.helpers import operator_specs

SPECS = operator_specs()
CONV_POSITIONALS = ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                    "dilation")
K = 5  # every kind takes 5x5 (stacked needs K >= 5)


def _operator_classes() -> list[type[nn.Module]]:
    """The class each registered kind builds (``nn.Conv2d`` for the dense kinds)."""
    return sorted({type(create_conv(name, 8, 16, K)) for name in CONV_KINDS},
                  key=lambda cls: cls.__name__)


def test_specs_cover_every_registered_kind():
    assert {spec.partition(":")[0] for spec in SPECS} == set(CONV_KINDS)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(7, 7), (8, 10)])
def test_shape_channels_last_and_backward(spec, stride, size):
    module = create_conv(spec, 8, 16, K, stride)
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


@pytest.mark.parametrize("cls", _operator_classes(), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("stride,padding", [(1, 2), (2, 2), (2, 1), (1, 0)])
def test_drop_in_for_nn_conv2d(cls, stride, padding):
    """``nn.Conv2d(a, b, k, s, p)`` -> ``Operator(a, b, k, s, p)``: the same output grid, or a
    clear error naming the padding where the operator cannot have it; never another network."""
    reference = nn.Conv2d(8, 16, K, stride, padding)
    x = torch.randn(1, 8, 11, 12)
    try:
        module = cls(8, 16, K, stride, padding)
    except ValueError as error:
        assert padding != K // 2, "the same-style padding must always be accepted"
        assert f"padding={padding}" in str(error)
        return
    assert module(x).shape == reference(x).shape
    for name in ("stride", "padding"):
        if isinstance(getattr(module, name, None), tuple):
            assert getattr(module, name) == getattr(reference, name)


@pytest.mark.parametrize("cls", [c for c in _operator_classes() if c is not nn.Conv2d],
                         ids=lambda cls: cls.__name__)
def test_operator_specific_arguments_are_keyword_only(cls):
    parameters = list(inspect.signature(cls).parameters.values())
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert tuple(positional) == CONV_POSITIONALS
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[len(positional):])


@pytest.mark.parametrize("block,shared", [
    (ConvNormAct, CONV_POSITIONALS), (BasicBlock, ("in_channels", "out_channels", "stride")),
    (Bottleneck, ("in_channels", "out_channels", "stride")),
    (InvertedResidual, ("in_channels", "out_channels", "stride")),
    (ShuffleUnitV1, ("in_channels", "out_channels", "stride")),
    (ShuffleUnitV2, ("in_channels", "out_channels", "stride")),
])
def test_blocks_take_shared_arguments_first_and_their_own_by_keyword(block, shared):
    parameters = list(inspect.signature(block).parameters.values())
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert tuple(positional) == shared
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters[len(shared):])


@pytest.mark.parametrize("spec", SPECS)
def test_wrong_input_raises_clear_error(spec):
    module = create_conv(spec, 8, 16, K)
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
                                        ("padding", -1), ("in_channels", 0),
                                        ("out_channels", -4), ("kernel_size", 0),
                                        ("stride", 1.5)])
def test_invalid_common_arguments(spec, name, value):
    arguments = {"in_channels": 8, "out_channels": 16, "kernel_size": K, name: value}
    message = f"{name}={value!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        create_conv(spec, arguments.pop("in_channels"), arguments.pop("out_channels"),
                    arguments.pop("kernel_size"), **arguments)
