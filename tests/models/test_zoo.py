import pytest
import torch

from leanconv.cost import count_params, profile
from leanconv.models import create_model, list_models, model_entry
from leanconv.ops import HetConv2d

# name: (parameters, MACs as torch's flop counter sees them / 2) at 224x224 (CIFAR: 32x32)
PUBLISHED = {
    "mobilenet_v1_100": (4_231_976, 568.7e6),
    "mobilenet_v2_100": (3_504_872, 300.8e6),
    "mobilenet_v2_140": (6_108_776, 582.2e6),
    "shufflenet_v2_x0_5": (1_366_792, 40.5e6),
    "shufflenet_v2_x1_0": (2_278_604, 144.9e6),
    "shufflenet_v2_x1_5": (3_503_624, 295.8e6),
    "shufflenet_v2_x2_0": (7_393_996, 583.3e6),
    "mixnet_s": (4_134_606, 239.2e6),
    "mixnet_m": (5_014_382, 339.2e6),
    "mixnet_l": (7_329_252, 555.3e6),
    "resnet18": (11_689_512, 1814e6),
    "resnet34": (21_797_672, 3664e6),
    "resnet50": (25_557_032, 4089e6),
    "vgg16": (138_365_992, 15470e6),
    "vgg16_cifar": (None, 313.7e6),
}
# ShuffleNet v1 1.0x: MACs of the paper's Table 2 (within 3%)
SHUFFLENET_V1_PAPER = {1: 143e6, 2: 140e6, 3: 137e6, 4: 133e6, 8: 137e6}


def _macs(name, model):
    size = model_entry(name).input_size
    return profile(model, (1, 3, size, size)).totals["macs_executed"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_sizes(name):
    params, macs = PUBLISHED[name]
    model = create_model(name)
    if params is not None:
        assert count_params(model) == params
    assert _macs(name, model) == pytest.approx(macs, rel=0.01)


@pytest.mark.parametrize("name,params,macs", [("resnet20_cifar", 0.27, 41),
                                              ("resnet56_cifar", 0.85, 125)])
def test_cifar_resnets(name, params, macs):
    """The ResNet paper's sizes, to the precision it gives them (M params, M MACs)."""
    model = create_model(name)
    assert round(count_params(model) / 1e6, 2) == params
    assert round(_macs(name, model) / 1e6) == macs


@pytest.mark.parametrize("groups", sorted(SHUFFLENET_V1_PAPER))
def test_shufflenet_v1_matches_paper_table(groups):
    name = f"shufflenet_v1_g{groups}"
    assert _macs(name, create_model(name)) == pytest.approx(SHUFFLENET_V1_PAPER[groups],
                                                            rel=0.03)
    half = create_model(name, width=0.5)
    assert half(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_forward_and_backward(name):
    size = 32 if model_entry(name).input_size == 32 else 64
    for conv in (None, "hetconv:p=2"):
        model = create_model(name, num_classes=7, in_chans=1, conv=conv)
        x = torch.randn(2, 1, size, size)
        y = model(x.contiguous(memory_format=torch.channels_last))
        assert y.shape == (2, 7)
        y.sum().backward()
        assert model.forward_features(x).dim() == 4
        assert model.forward_head(model.forward_features(x), pre_logits=True).dim() == 2
        if conv is None:
            model.eval()
            torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)),
                                       model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16", "mobilenet_v2_100",
                                  "shufflenet_v2_x1_0", "mixnet_s", "shufflenet_v1_g3"])
def test_small_input_keeps_resolution(name):
    model = create_model(name, small_input=True, num_classes=10, in_chans=1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    x = torch.randn(1, 1, 56, 56)
    small = model.forward_features(x).shape[-1]
    default = create_model(name, num_classes=10, in_chans=1).forward_features(x).shape[-1]
    # the stem no longer downsamples (VGG: ceil-mode pools keep the odd edge pixels)
    assert small > default


def test_conv_replaces_spatial_convs_but_not_the_stem():
    model = create_model("resnet18", conv="hetconv:p=4")
    het = [m for m in model.modules() if isinstance(m, HetConv2d)]
    assert len(het) == 16  # two 3x3 per BasicBlock, 8 blocks
    assert type(model.stem[0].conv) is torch.nn.Conv2d
    stem = create_model("resnet20_cifar", conv="hetconv:p=1", conv_stem=True).stem.conv
    assert isinstance(stem, HetConv2d)


@pytest.mark.parametrize("call,message", [
    (lambda: create_model("resnet5"), "unknown model 'resnet5'; close matches: resnet50"),
    (lambda: create_model("resnet18", num_classes=0), "num_classes=0"),
    (lambda: create_model("resnet18", in_chans=-1), "in_chans=-1"),
    (lambda: create_model("resnet18", conv="hetconv:q=1"), "invalid conv spec"),
    (lambda: create_model("resnet18", depth=3), "unexpected keyword argument 'depth'"),
    (lambda: create_model("shufflenet_v1_g3", width=0), "width=0"),
    (lambda: create_model("mobilenet_v2_100")(torch.randn(1, 4, 32, 32)),
     r"expected input of shape \(N, 3, H, W\)"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
