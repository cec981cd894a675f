"""The gradient reconstruction fallback (CompConv, stacked convs, deformable convs, dwsep with
a norm between)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from leanconv.calibration import FIT_RULES, fit_converted
from leanconv.calibration.reconstruction import fit_reconstruction, reconstruct
from leanconv.calibration.rules import FitProblem, fit_rule_for
from leanconv.inherit import inherit_weights
from leanconv.ops import CompConv2d, DeformConv2d, DepthwiseSeparableConv2d, StackedConv2d


def _relative(layer, original, x):
    with torch.no_grad():
        y = original(x)
        return float((layer(x) - y).square().sum() / y.square().sum())


@pytest.mark.parametrize("make,kernel,factor", [
    # CompConv's identity channels (6 of 16: input copies) have no parameters to fit
    (lambda: CompConv2d(16, 16, 3, c0=8), 3, 0.8),
    (lambda: StackedConv2d(8, 8, 5), 5, 0.3),
    (lambda: DepthwiseSeparableConv2d(8, 8, 3, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU),
     3, 0.6),
])
def test_reconstruction_lowers_the_error(make, kernel, factor):
    layer = make()
    assert fit_rule_for(layer).fit is fit_reconstruction or isinstance(
        layer, DepthwiseSeparableConv2d)
    channels = layer.in_channels
    original = nn.Sequential(nn.Conv2d(channels, layer.out_channels, kernel, 1, kernel // 2))
    converted = nn.Sequential(layer)
    x = F.avg_pool2d(torch.randn(16, channels, 10, 10), 3, 1, 1)
    before = _relative(layer, original, x)
    results = fit_converted(original, converted, ["0"], x)
    assert results["0"].method == "reconstructed"
    after = _relative(layer, original, x)
    assert after < factor * before
    assert results["0"].rel_error == pytest.approx(after, rel=0.3)  # on the samples


def test_best_parameters_are_kept_and_grads_cleared():
    dense = nn.Conv2d(4, 4, 3, 1, 1)
    layer = DeformConv2d(4, 4, 3, bias=True)
    assert inherit_weights(layer, dense) == "exact"  # already the optimum: error 0
    x = torch.randn(4, 4, 6, 6)
    with torch.no_grad():
        y = dense(x)
    problem = FitProblem("d", x, torch.arange(144), (4, 4, 6, 6), torch.zeros(144, 4), y,
                         1e-3, 2, 0)
    state = copy.deepcopy(layer.state_dict())
    assert reconstruct(layer, problem, steps=5) == "reconstructed"
    for key, value in layer.state_dict().items():
        torch.testing.assert_close(value, state[key])
    assert all(p.grad is None for p in layer.parameters())


def test_batchnorms_inside_are_re_estimated_without_changing_the_function():
    layer = DepthwiseSeparableConv2d(4, 6, 3, norm_layer=nn.BatchNorm2d)
    original = nn.Sequential(nn.Conv2d(4, 6, 3, 1, 1))
    converted = nn.Sequential(layer)
    x = torch.randn(8, 4, 7, 7) * 3 + 1
    fit_converted(original, converted, ["0"], x)
    layer.eval()
    with torch.no_grad():
        fitted = layer(x)
        depthwise = layer.depthwise(x)
    bn = layer.norm
    torch.testing.assert_close(bn.running_mean, depthwise.mean((0, 2, 3)), atol=1e-4, rtol=0)
    copy_ = copy.deepcopy(layer)
    from leanconv.calibration import recalibrate_batchnorm

    recalibrate_batchnorm(copy_, x)
    with torch.no_grad():
        torch.testing.assert_close(copy_(x), fitted, atol=1e-4, rtol=1e-4)


def test_missing_maps_is_an_error():
    problem = FitProblem("x", torch.randn(1, 2, 3, 3), torch.arange(9), (1, 2, 3, 3),
                         torch.zeros(9, 2), None, 1e-3, 2, 0)
    with pytest.raises(ValueError, match="needs the full target maps"):
        reconstruct(nn.Conv2d(2, 2, 3, 1, 1), problem)


def test_the_fallback_is_registered_for_every_module():
    assert FIT_RULES.for_type(nn.Sequential()).fit is fit_reconstruction
    assert FIT_RULES.for_type(nn.Sequential()).full_maps(nn.Sequential())
    assert not FIT_RULES.for_type(nn.Conv2d(2, 2, 3)).full_maps(nn.Conv2d(2, 2, 3))
    assert FIT_RULES.for_type(nn.Conv2d(2, 2, 3, padding_mode="reflect")).full_maps(
        nn.Conv2d(2, 2, 3, padding_mode="reflect"))
