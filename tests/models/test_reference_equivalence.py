"""The zoo's models are the anchors' models: their randomly initialised weights, loaded by the
documented positional mapping, give the same logits."""

import pytest
import torch
import torchvision

from leanconv.models import create_model
from leanconv.models.weights import load_weights_by_order


def _randomise_norms(model):
    """Random BN statistics and affine parameters, so BN is not a no-op in eval mode."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return model


def _assert_same_logits(name, reference):
    reference = _randomise_norms(reference).eval()
    ours = create_model(name).eval()
    mapping = load_weights_by_order(ours, reference)
    assert len(mapping) == len(reference.state_dict())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = reference(x)
        # relative to the logits' scale: leanconv's MixConv kernel sums in another order than
        # PyTorch's convs (mixnet_s: both fp32 results are ~5e-6 of the scale from fp64's)
        scale = expected.abs().max().item()
        torch.testing.assert_close(ours(x), expected, atol=1e-5 * scale, rtol=1e-5)


@pytest.mark.parametrize("name,build", [
    ("mobilenet_v2_100", torchvision.models.mobilenet_v2),
    ("shufflenet_v2_x1_0", torchvision.models.shufflenet_v2_x1_0),
    ("resnet50", torchvision.models.resnet50),
    ("resnet18", torchvision.models.resnet18),
])
def test_same_logits_as_torchvision(name, build):
    _assert_same_logits(name, build())


def test_same_logits_as_timm_mixnet_s():
    timm = pytest.importorskip("timm", reason="timm is in the 'compare' extra (make test "
                                              "installs it)")
    _assert_same_logits("mixnet_s", timm.create_model("mixnet_s"))


def test_mapping_refuses_a_different_architecture():
    ours = create_model("resnet18")
    before = ours.state_dict()["stem.0.conv.weight"].clone()
    with pytest.raises(ValueError, match="not the same architecture"):
        load_weights_by_order(ours, torchvision.models.resnet34())
    with pytest.raises(ValueError, match=r"does not fit"):
        load_weights_by_order(create_model("resnet18", num_classes=10),
                              torchvision.models.resnet18())
    assert torch.equal(ours.state_dict()["stem.0.conv.weight"], before)
