import pytest
import torch
import torchvision
from torch import nn

from leanconv import HetConv2d, convert, create_conv, create_model, load_model, profile
from leanconv.converter import ConversionPolicy
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
    converted, report = convert(model, "hetconv:p=4", input_shape=(1, 3, 224, 224))
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
    rebuilt, _ = convert(model, "hetconv:p=2", inherit_weights=False)
    rebuilt.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    converted.eval()
    rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), converted(x), rtol=0, atol=0)
    assert profile(converted, SHAPE).totals["macs_executed"] > 0


def test_policies():
    model = torchvision.models.resnet18()
    _, report = convert(model, "hetconv:p=4", exclude=["layer4.*"])
    excluded = [r for r in report.rows if r.name.startswith("layer4")]
    assert excluded and all(not r.replaced and r.reason == "excluded by glob" for r in excluded)
    _, report = convert(model, "hetconv:p=4", min_channels=128)
    assert all(not r.replaced for r in report.rows if r.name.startswith("layer1."))
    assert any(r.replaced for r in report.rows if r.name.startswith("layer2."))
    _, report = convert(model, "hetconv:p=3")
    kept = next(r for r in report.rows if r.name == "layer1.0.conv1")
    assert not kept.replaced and "in_channels=64 is not divisible by p=3" in kept.reason
    _, report = convert(model, "hetconv:p=4", policy=ConversionPolicy(include=("layer1.*",)))
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
    het, _ = convert(model, "hetconv:p=4")
    dense, report = convert(het, "standard")
    assert report.replaced == 16 and not any(isinstance(m, HetConv2d) for m in dense.modules())
    x = torch.randn(1, 3, 64, 64)
    het.eval()
    dense.eval()
    torch.testing.assert_close(dense(x), het(x), atol=1e-4, rtol=1e-4)


def test_convert_leaves_the_original_unless_inplace():
    model = torchvision.models.resnet18()
    converted, _ = convert(model, "hetconv:p=4")
    assert converted is not model and type(model.layer1[0].conv1) is nn.Conv2d
    same, _ = convert(model, "hetconv:p=4", inplace=True)
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


# --- data-aware inheritance: convert(..., calibration=images) ---------------------------------

def _images(n):
    """Spatially correlated images (as natural images are), where a data-aware fit matters."""
    return torch.nn.functional.avg_pool2d(torch.randn(n, 1, 28, 28), 5, 1, 2) * 3


def _trained_like_resnet20():
    from leanconv import create_model
    from leanconv.calibration import recalibrate_batchnorm
    from tests.helpers import randomize_batchnorms

    model = randomize_batchnorms(create_model("resnet20_cifar", in_chans=1, num_classes=10))
    recalibrate_batchnorm(model, _images(256))  # BN statistics of its data, as after training
    return model.eval()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: a second thread only adds synchronisation
    yield
    torch.set_num_threads(threads)


def _logit_error(model, reference, x):
    model.eval()
    with torch.no_grad():
        want = reference(x)
        return float((model(x) - want).norm() / want.norm())


def test_calibration_fits_much_closer_than_data_free_inheritance(one_thread):
    torch.manual_seed(0)
    model = _trained_like_resnet20()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    test = _images(128)
    free, free_report = convert(model, "hetconv:p=4")
    fitted, report = convert(model, "hetconv:p=4", input_shape=(1, 1, 28, 28),
                             calibration=_images(128), calib_samples=10000)
    data_free, calibrated = _logit_error(free, model, test), _logit_error(fitted, model, test)
    assert calibrated * 3 < data_free  # measured: 0.16 vs 0.74
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    norms = [(name, m) for name, m in fitted.named_modules() if isinstance(m, nn.BatchNorm2d)]
    originals = dict(model.named_modules())
    # the stem's BatchNorm runs before the first replaced layer: its statistics stay; those
    # after it are re-estimated
    assert norms[0][0] == "stem.bn"
    assert torch.equal(norms[0][1].running_mean, originals["stem.bn"].running_mean)
    assert all(not torch.equal(m.running_mean, originals[name].running_mean)
               for name, m in norms[1:])
    assert not torch.equal(fitted.head.fc.weight, model.head.fc.weight)  # refitted
    replaced = [r for r in report.rows if r.replaced]
    assert len(replaced) == 18
    assert all(r.weights.startswith("fitted (least-squares, err 0.") for r in replaced)
    calibration = report.totals["calibration"]
    assert calibration["images"] == 128 and calibration["samples"] == 10000
    assert calibration["seconds"] > 0 and report.totals["macs_analytic_before"] > 0
    assert calibration["classifier"]["name"] == "head.fc"
    assert 0 < calibration["classifier"]["rel_error"] < 0.1
    assert "weights fitted on 128 calibration images" in report.table()
    assert "classifier 'head.fc' refitted (err 0.0" in report.table()
    assert free_report.totals["calibration"] is None
    assert "weights inherited data-free" in free_report.table()


def test_calibration_in_place_gives_the_same_model(one_thread):
    torch.manual_seed(0)
    model = _trained_like_resnet20()
    images = _images(32)
    copied, _ = convert(model, "group:g=2,shuffle=1", include=["stages.2.*"],
                        calibration=images, calib_samples=2000)
    same, report = convert(model, "group:g=2,shuffle=1", include=["stages.2.*"],
                           calibration=images, calib_samples=2000,
                           inplace=True)
    assert same is model and report.replaced == 6
    assert all(r.weights.startswith("fitted (least-squares") for r in report.rows
               if r.replaced)
    for (name, a), (_, b) in zip(copied.state_dict().items(), same.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_mixconv_and_grouped_convs_inherit_centred_truncated_kernels():
    dense = nn.Conv2d(12, 12, 3, padding=1, bias=True)
    x = torch.randn(2, 12, 9, 9)
    for spec, rule in [("mixconv:k=3.5.7", "truncated"), ("mixgroup:k=3.5", "truncated"),
                       ("mixgroup:k=3", "exact"), ("depthwise", "truncated"),
                       ("mixconv:k=3.5,dilated=1", "truncated")]:
        fresh = create_conv(spec, 12, 12, 3, bias=True)
        fresh_error = (fresh(x) - dense(x)).norm()
        assert inherit_weights(fresh, dense) == rule, spec
        assert (fresh(x) - dense(x)).norm() < fresh_error, spec
    mix = create_conv("mixconv:k=3.5.7", 12, 12, 3)
    inherit_weights(mix, dense)
    seven = mix.convs[2].weight[:, 0]  # channels 8..11: the 7x7 group, the 3x3 in its centre
    diagonal = dense.weight[torch.arange(8, 12), torch.arange(8, 12)]
    assert torch.equal(seven[:, 2:5, 2:5], diagonal)
    outside = seven.detach().clone()
    outside[:, 2:5, 2:5] = 0
    assert not outside.any()  # taps beyond the dense 3x3 start at zero
    exact = create_conv("mixgroup:k=3", 12, 12, 3, bias=True)
    inherit_weights(exact, dense)
    torch.testing.assert_close(exact(x), dense(x))


@pytest.mark.parametrize("kwargs,message", [
    (dict(inherit_weights=False), "needs inherit_weights=True"),
    (dict(calibration=torch.randn(4, 1, 28)), r"calibration of shape \(4, 1, 28\)"),
    (dict(calibration="data/"), "calibration must be a torch.Tensor"),
    (dict(calib_samples=0), "calib_samples=0 is invalid"),
])
def test_calibration_errors(kwargs, message):
    from leanconv import create_model

    arguments = {"calibration": torch.randn(4, 1, 28, 28), **kwargs}
    model = create_model("resnet20_cifar", in_chans=1, num_classes=10)
    with pytest.raises(ValueError, match=message):
        convert(model, "hetconv:p=4", **arguments)
    with pytest.raises(ValueError, match="to='standard' rebuilds exact dense equivalents"):
        convert(model, "standard", calibration=torch.randn(4, 1, 28, 28))


def test_inplace_report_counts_the_parameters_before_the_change():
    from leanconv import load_model

    model, _ = load_model("resnet20_cifar")
    before = sum(p.numel() for p in model.parameters())
    converted, report = convert(model, "hetconv:p=4", inplace=True)
    assert report.totals["params_before"] == before
    assert report.totals["params_after"] == sum(p.numel() for p in converted.parameters())
    assert report.totals["params_after"] < before


def test_a_plan_gives_each_layer_its_own_spec():
    from leanconv import create_model
    from leanconv.converter import PLAN
    from leanconv.ops import DepthwiseSeparableConv2d, GroupConv2d

    model = create_model("resnet20_cifar").eval()
    plan = {"stages.0.0.conv1.conv": "dwsep", "stages.1.*": "hetconv:p=4",
            "stages.1.0.conv2.conv": "keep"}
    converted, report = convert(model, plan, input_shape=(1, 3, 32, 32))
    rows = {row.name: row for row in report.rows}
    assert isinstance(converted.get_submodule("stages.0.0.conv1.conv"), DepthwiseSeparableConv2d)
    assert isinstance(converted.get_submodule("stages.1.1.conv1.conv"), HetConv2d)
    assert type(converted.get_submodule("stages.1.0.conv2.conv")) is nn.Conv2d  # exact beats glob
    assert rows["stages.1.0.conv2.conv"].reason == "plan: keep"
    assert rows["stem.conv"].reason == "not in the plan"
    assert report.to == PLAN and report.replaced == 6
    assert {r.spec for r in report.rows if r.replaced} == {"dwsep", "hetconv:p=4"}
    assert "6 of 19 layers replaced by the plan (dwsep x1, hetconv:p=4 x5)" in report.table()
    x = torch.randn(2, 3, 32, 32)
    assert converted(x).shape == model(x).shape
    # a plan is explicit: a 1x1 conv (and the stem) it names is converted although the
    # default policy keeps them
    resnet = torchvision.models.resnet18()
    pointwise, report = convert(resnet, {"layer2.0.downsample.0": "group:g=2,shuffle=1",
                                         "conv1": "dwsep"})
    assert isinstance(pointwise.get_submodule("layer2.0.downsample.0"), GroupConv2d)
    assert isinstance(pointwise.get_submodule("conv1"), DepthwiseSeparableConv2d)


@pytest.mark.parametrize("plan,message", [
    ({}, r"plan=\{\} is invalid"),
    ("nope.json", None),  # a string is a spec, not a plan: the spec error
    ({"layer9.conv1": "dwsep"}, "'layer9.conv1' names no nn.Conv2d of the model"),
    ({"stages.0.0.conv1.cnv": "dwsep"}, r"close matches: \['stages.0.0.conv1.conv'"),
    ({"stages.*": "hetconv:q=1"}, "plan entry 'stages.*': invalid conv spec"),
    ({"stages.*": "standard"}, "'standard' is for convert"),
    ({"stages.*": 4}, "plan entry 'stages.*': 4 is invalid; expected a conv spec string or 'keep'"),
])
def test_bad_plans_name_the_entry(plan, message):
    from leanconv import create_model

    model = create_model("resnet20_cifar")
    with pytest.raises(ValueError, match=message or "invalid conv spec 'nope.json'"):
        convert(model, plan)
    with pytest.raises(ValueError, match="give no policy"):
        convert(model, {"stages.*": "dwsep"}, exclude=["stages.2.*"])


def test_importing_the_submodules_does_not_hide_the_package_functions():
    """A submodule named like a package function replaces it on import (leanconv.convert was
    a module after `import leanconv.search`): checked in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import leanconv.converter, leanconv.search, leanconv\n"
            "assert leanconv.convert.__name__ == 'convert' and callable(leanconv.convert)\n"
            "assert leanconv.shrink.__name__ == 'shrink' and callable(leanconv.shrink)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_costs_are_computed_only_when_asked():
    model = create_model("resnet20_cifar", in_chans=1)
    _, plain = convert(model, "hetconv:p=4")
    assert plain.totals["input_shape"] is None and plain.totals["macs_analytic_before"] is None
    assert all(row.macs_before is None for row in plain.rows)
    assert "MMACs" not in plain.table() and "MACs analytic" not in plain.table()
    _, costed = convert(model, "hetconv:p=4", input_shape=(1, 1, 28, 28))
    assert costed.totals["macs_analytic_after"] < costed.totals["macs_analytic_before"]
    assert "MMACs" in costed.table() and "MACs analytic" in costed.table()


def test_an_input_the_model_does_not_take_is_an_error_not_a_silent_blank():
    model = create_model("resnet20_cifar", in_chans=1)  # a gray model given an RGB shape
    with pytest.raises(ValueError, match=r"convert: input_shape=\(1, 3, 32, 32\) does not fit"):
        convert(model, "hetconv:p=4", input_shape=(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"convert: input_shape=\[-1, 1, 28, 28\] is invalid"):
        convert(model, "hetconv:p=4", input_shape=[-1, 1, 28, 28])


def test_a_converted_adapted_checkpoint_saves_and_reloads(tmp_path):
    """A torchvision model trained on 1-channel, 10-class images (stem and head adapted):
    its conversion keeps the adaptation and the data's normalisation when saved."""
    from leanconv.converter import save_converted
    from tests.helpers import hand_made_checkpoint

    hand_made_checkpoint(tmp_path / "best.pt", model="torchvision:resnet18")
    model, info = load_model(str(tmp_path / "best.pt"))
    converted, report = convert(model, "hetconv:p=4")
    save_converted(str(tmp_path / "c.pt"), converted, info, report)
    again, again_info = load_model(str(tmp_path / "c.pt"))
    assert again_info.adapt == info.adapt and again_info.data == info.data
    assert (again_info.in_chans, again_info.num_classes) == (1, 10)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), converted.eval()(x))
