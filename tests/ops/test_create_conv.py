import pytest
import torch
from torch import nn

from leanconv.ops import (
    CONV_KINDS,
    CompConv2d,
    DeformConv2d,
    DepthwiseConv2d,
    DepthwiseSeparableConv2d,
    GroupConv2d,
    HetConv2d,
    MixConv2d,
    StackedConv2d,
    create_conv,
    parse_conv_spec,
)


@pytest.mark.parametrize("spec,cls,attrs", [
    ("standard", nn.Conv2d, {"groups": 1, "padding": (1, 1)}),
    ("dilated:d=3", nn.Conv2d, {"dilation": (3, 3), "padding": (3, 3)}),
    ("group:g=4,shuffle=1", GroupConv2d, {"groups": 4}),
    ("depthwise", DepthwiseConv2d, {"groups": 16}),
    ("dwsep:dm=2", DepthwiseSeparableConv2d, {}),
    ("hetconv:p=4", HetConv2d, {"p": 4, "layout": "block"}),
    ("hetconv:p=8,layout=interleaved", HetConv2d, {"p": 8, "layout": "interleaved"}),
    ("mixconv:k=3.5.7.9,split=exp", MixConv2d, {"kernel_sizes": (3, 5, 7, 9),
                                                "split": "exponential"}),
    ("compconv:c0=64", CompConv2d, {"depth": 1}),
    ("compconv:c0=128,d=2", CompConv2d, {"depth": 2}),
    ("stacked", StackedConv2d, {}),
    ("deform:og=2,mod=true", DeformConv2d, {"offset_groups": 2, "modulated": True}),
    (" HetConv : p = 2 ", HetConv2d, {"p": 2}),
])
def test_specs_build_the_named_operator(spec, cls, attrs):
    module = create_conv(spec, 16, 16, 3, 2)
    assert type(module) is cls
    for name, value in attrs.items():
        assert getattr(module, name) == value
    assert module(torch.randn(1, 16, 8, 8)).shape == (1, 16, 4, 4)


def test_mixconv_defaults_to_the_layer_kernel_size():
    assert create_conv("mixconv", 8, 8, 5).kernel_sizes == (5,)


def test_callable_spec_is_called():
    def factory(cin, cout, k, stride=1, **kw):
        return nn.Conv2d(cin, cout, k, stride, bias=kw.get("bias", False))
    assert create_conv(factory, 3, 4, 1, bias=True).bias is not None


@pytest.mark.parametrize("spec,message", [
    ("hexconv", "unknown kind 'hexconv'"),
    ("hetconv:q=4", "'q=4' is not name=value with a parameter of 'hetconv'"),
    ("hetconv:p", "'p' is not name=value"),
    ("hetconv:p=four", "p='four' is not an int"),
    ("mixconv:k=3,5", "'5' is not name=value"),
    ("mixconv:k=3.x", "dot-separated int list"),
    ("group:shuffle=maybe", "a bool"),
    ("hetconv:layout=diag", "one of interleaved|block"),
    (3, "expected a string, got int"),
])
def test_malformed_specs_list_valid_kinds(spec, message):
    with pytest.raises(ValueError, match=message) as info:
        create_conv(spec, 8, 8, 3)
    # every error lists what would be valid: each kind on its own line
    assert all(f"\n{kind}:" in str(info.value) for kind in CONV_KINDS)


def test_keyword_errors():
    with pytest.raises(ValueError, match=r"\['groups'\] given both"):
        create_conv("group:g=2", 8, 8, 3, groups=4)
    with pytest.raises(ValueError, match=r"unexpected keyword argument 'foo'.*accepted: padding"):
        create_conv("standard", 8, 8, 3, foo=1)
    with pytest.raises(ValueError, match=r"padding=1 is invalid for kernel sizes \(3, 5\)"):
        create_conv("mixconv:k=3.5", 8, 8, 3, padding=1)
    assert create_conv("mixconv", 8, 8, 3, padding=1).kernel_sizes == (3,)  # its own padding


def test_parse_returns_builder_kwargs():
    kind, values = parse_conv_spec("compconv:c0=64,d=3")
    assert kind.name == "compconv" and values == {"c0": 64, "depth": 3}
