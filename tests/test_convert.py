import pytest
import torch
import torchvision
from torch import nn

from leanconv import HetConv2d, convert, create_conv, profile
from leanconv.convert import ConversionPolicy
from leanconv.inherit import inherit_weights

SHAPE = (1, 3, 64, 64)


def _outputs_shapes(model, x):
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, _, out, n=n: shapes.__setitem__(n, out.shape))
             for n, m in model.named_modules() if n]
    model(x)
    for h in hooks:
        h.remove()
    return shapes


def test_resnet50_to_hetconv_matches_the_formula():
    model = torchvision.models.resnet50()
    converted, report = convert(model, "hetconv:p=4")
    assert report.replaced == 16  # every 3x3 conv; the 7x7 stem and the 1x1s are kept
    stem = next(r for r in report.rows if r.name == "conv1")
    assert not stem.replaced and stem.reason.startswith("stem")
    assert type(converted.conv1) is nn.Conv2d and isinstance(converted.layer1[0].conv2,
                                                             HetConv2d)
    ratio = 1 / 4 + (1 - 1 / 4) / 9
    saved = sum(r.macs_before * (1 - ratio) for r in report.rows if r.replaced)
    before = report.totals["macs_analytic_before"]
    assert before == pytest.approx(4.089e9, rel=0.001)
    assert report.totals["macs_analytic_after"] == pytest.approx(before - saved, rel=0.01)
    x = torch.randn(*SHAPE)
    model.eval()
    converted.eval()
    assert converted(x).shape == model(x).shape == (1, 1000)
    old, new = _outputs_shapes(model, x), _outputs_shapes(converted, x)
    for row in report.rows:
        assert old[row.name] == new[row.name]
    assert "16 of 53 layers replaced" in report.table()
    assert report.to_dict()["replaced"] == 16


REFERENCES = ["resnet18", "resnet50", "vgg16_bn", "mobilenet_v2", "shufflenet_v2_x1_0",
              "efficientnet_b0"]


@pytest.mark.parametrize("name", [*REFERENCES, "timm:resnet18"])
def test_foreign_models_convert_run_and_round_trip(name, tmp_path):
    if name.startswith("timm:"):
        timm = pytest.importorskip("timm", reason="timm is in the 'compare' extra (make test "
                                                  "installs it)")
        model = timm.create_model(name[5:])
    else:
        model = torchvision.models.get_model(name, weights=None)
    converted, report = convert(model, "hetconv:p=2", input_shape=SHAPE)
    if name in ("mobilenet_v2", "shufflenet_v2_x1_0", "efficientnet_b0"):
        assert report.replaced == 0  # their KxK convs are depthwise: kept by the policy
        assert any("depthwise" in r.reason for r in report.rows)
    else:
        assert report.replaced > 0
    x = torch.randn(2, 3, 64, 64)
    converted(x).sum().backward()
    torch.save(converted.state_dict(), tmp_path / "w.pt")
    rebuilt, _ = convert(model, "hetconv:p=2", inherit_weights=False, input_shape=None)
    rebuilt.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    converted.eval()
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), converted(x), rtol=0, atol=0)
    assert profile(converted, SHAPE).totals["macs_executed"] > 0


def test_policies():
    model = torchvision.models.resnet18()
    _, report = convert(model, "hetconv:p=4", exclude=["layer4.*"], input_shape=None)
    excluded = [r for r in report.rows if r.name.startswith("layer4")]
    assert excluded and all(not r.replaced and r.reason == "excluded by glob" for r in excluded)
    _, report = convert(model, "hetconv:p=4", min_channels=128, input_shape=None)
    assert all(not r.replaced for r in report.rows if r.name.startswith("layer1."))
    assert any(r.replaced for r in report.rows if r.name.startswith("layer2."))
    _, report = convert(model, "hetconv:p=3", input_shape=None)
    kept = next(r for r in report.rows if r.name == "layer1.0.conv1")
    assert not kept.replaced and "in_channels=64 is not divisible by p=3" in kept.reason
    _, report = convert(model, "hetconv:p=4", policy=ConversionPolicy(include=("layer1.*",)),
                        input_shape=None)
    assert report.replaced == 4


def test_geometry_and_bias_are_carried_over():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 16, 3, stride=2, padding=2,
                                                       dilation=2, bias=True))
    converted, _report = convert(model, "hetconv:p=4", input_shape=(1, 3, 17, 17))
    het = converted[1]
    assert isinstance(het, HetConv2d) and (het.stride, het.padding, het.dilation) == (2, 2, 2)
    assert het.bias is not None and torch.equal(het.bias, model[1].bias)
    x = torch.randn(1, 3, 17, 17)
    assert converted(x).shape == model(x).shape


def test_inherited_weights_beat_fresh_ones():
    dense = nn.Conv2d(16, 32, 3, padding=1, bias=True)
    x = torch.randn(2, 16, 9, 9)
    exact = create_conv("hetconv:p=1", 16, 32, 3, bias=True)
    assert inherit_weights(exact, dense) == "exact"
    torch.testing.assert_close(exact(x), dense(x), atol=1e-5, rtol=0)
    for spec, rule in [("hetconv:p=4", "truncated"), ("group:g=4,shuffle=1", "truncated"),
                       ("dwsep", "least-squares")]:
        fresh = create_conv(spec, 16, 32, 3, bias=True)
        fresh_error = (fresh(x) - dense(x)).norm()
        assert inherit_weights(fresh, dense) == rule
        assert (fresh(x) - dense(x)).norm() < fresh_error
    full_rank = create_conv("dwsep:dm=9", 16, 32, 3, bias=True)  # rank K^2: exact
    assert inherit_weights(full_rank, dense) == "exact"
    torch.testing.assert_close(full_rank(x), dense(x), atol=1e-4, rtol=0)


def test_convert_back_to_standard_is_exact():
    model = torchvision.models.resnet18()
    het, _ = convert(model, "hetconv:p=4", input_shape=None)
    dense, report = convert(het, "standard", input_shape=None)
    assert report.replaced == 16 and not any(isinstance(m, HetConv2d) for m in dense.modules())
    x = torch.randn(1, 3, 64, 64)
    het.eval()
    dense.eval()
    torch.testing.assert_close(dense(x), het(x), atol=1e-4, rtol=1e-4)


def test_convert_leaves_the_original_unless_inplace():
    model = torchvision.models.resnet18()
    converted, _ = convert(model, "hetconv:p=4", input_shape=None)
    assert converted is not model and type(model.layer1[0].conv1) is nn.Conv2d
    same, _ = convert(model, "hetconv:p=4", inplace=True, input_shape=None)
    assert same is model and isinstance(model.layer1[0].conv1, HetConv2d)


@pytest.mark.parametrize("call,message", [
    (lambda m: convert(m, "hexconv"), "unknown kind 'hexconv'"),
    (lambda m: convert(m, "hetconv", policy=ConversionPolicy(), exclude=["x"]),
     "either policy= or policy keywords"),
    (lambda m: convert(m, "hetconv", excludes=["x"]), "unexpected keyword argument 'excludes'"),
    (lambda m: convert(m, "hetconv", min_channels=0), "min_channels=0"),
    (lambda m: convert("resnet", "hetconv"), r"model must be an nn\.Module"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(torchvision.models.resnet18())
