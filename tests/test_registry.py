import pytest
import torch
from torch import nn

from leanconv.cost.op_costs import OP_COSTS, op_key
from leanconv.deploy.batchnorm import fold_rule
from leanconv.models import register_model
from leanconv.ops import CONV_KINDS, ConvKind, register_conv_kind
from leanconv.registry import Registry


def test_duplicate_names_both_places():
    registry = Registry("thing")

    def first():
        pass

    def second():
        pass

    registry.add("a", first)
    with pytest.raises(ValueError, match=r"thing 'a' is registered twice: at "
                                         r"\S*test_registry.py:\d+ and at \S*test_registry"):
        registry.add("a", second)
    assert registry.get("a") is first  # the first entry is kept


def test_a_miss_lists_close_matches():
    registry = Registry("model")
    for name in ("resnet18", "resnet50", "mixnet_s"):
        registry.add(name, name)
    with pytest.raises(ValueError, match="unknown model 'resnet5'; close matches: resnet50"):
        registry.get("resnet5")
    with pytest.raises(ValueError, match="known: mixnet_s, resnet18, resnet50"):
        registry.get("vgg")
    assert registry.find("vgg") is None and "resnet18" in registry


def test_for_type_takes_the_nearest_class_in_the_mro():
    registry = Registry("rule")
    registry.register(nn.Conv2d)("conv rule")
    registry.register(nn.Module)("module rule")

    class MyConv(nn.Conv2d):
        pass

    assert registry.for_type(MyConv(1, 1, 1)) == "conv rule"
    assert registry.for_type(MyConv) == "conv rule"
    assert registry.for_type(nn.ReLU()) == "module rule"
    assert Registry("rule").for_type(nn.ReLU()) is None


def test_the_registries_refuse_duplicates():
    with pytest.raises(ValueError, match="conv kind 'hetconv' is registered twice"):
        register_conv_kind(ConvKind("hetconv", nn.Conv2d, "again"))
    with pytest.raises(ValueError, match="model 'resnet18' is registered twice"):
        @register_model()
        def resnet18(*, num_classes=10, in_chans=3, conv=None):
            return nn.Identity()
    with pytest.raises(ValueError, match=r"op cost formula 'aten\.convolution' is registered"):
        OP_COSTS.add(torch.ops.aten.convolution.default, lambda *args: None)
    assert "hetconv" in CONV_KINDS and fold_rule(nn.Conv2d(1, 1, 1)) is not None


def test_op_costs_are_keyed_by_op_objects():
    assert op_key("aten.add") is torch.ops.aten.add
    assert op_key(torch.ops.aten.add.Tensor) is torch.ops.aten.add
    assert OP_COSTS.find(torch.ops.aten.convolution) is OP_COSTS.get("aten.convolution")
    with pytest.raises(ValueError, match=r"'aten\.convolutoin' is not a registered torch op"):
        OP_COSTS.add("aten.convolutoin", lambda *args: None)
    with pytest.raises(ValueError, match="is not a registered torch op"):
        op_key("convolution")


def test_remove():
    registry = Registry("rule")
    registry.add("a", 1)
    assert registry.remove("a") == 1 and len(registry) == 0
    with pytest.raises(ValueError, match="unknown rule 'a'"):
        registry.remove("a")
