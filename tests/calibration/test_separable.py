"""Alternating least squares for depthwise-separable convs."""

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import leanconv.calibration.separable as separable
from leanconv.calibration import fit_converted
from leanconv.calibration.least_squares import PatternClass, accumulate_grams
from leanconv.calibration.sampling import (
    Geometry,
    PatchSampler,
    gather_outputs,
    layer_seed,
    sample_positions,
)
from leanconv.inherit import inherit_weights
from leanconv.ops import DepthwiseSeparableConv2d, create_conv


def _smooth(x):
    """Spatially correlated images (as natural images are): where a data-aware fit matters."""
    return F.avg_pool2d(x, 3, 1, 1) + 0.3 * x


def _problem(m=6, n=8, dm=1, bias=True, stride=1, images=3, size=10):
    dense = nn.Conv2d(m, n, 3, stride, 1, bias=bias).double()
    op = create_conv(f"dwsep:dm={dm}", m, n, 3, stride, bias=bias).double()
    assert inherit_weights(op, dense) == "least-squares"  # the SVD start
    x = _smooth(torch.randn(images, m, size, size, dtype=torch.float64))
    with torch.no_grad():
        y = dense(x)
    b, _, ho, wo = y.shape
    positions = sample_positions((b, ho, wo), 200, 0)
    target = gather_outputs(y, positions)
    sampler = PatchSampler(x, Geometry((3, 3), (stride, stride), (1, 1)), positions,
                           (b, ho, wo))
    cls = PatternClass(torch.arange(sampler.columns + bias)[None], torch.arange(n)[None])
    ((gram, right),) = accumulate_grams(sampler, target, [cls], bias)
    parts = separable.separable_gram(gram[0], right[0], float(target.square().sum()), m, bias)
    r = dm
    start = separable.SeparableWeights(
        op.depthwise.weight.detach().reshape(m, r, 9).clone(),
        op.pointwise.weight.detach().reshape(n, m, r).clone(),
        op.pointwise.bias.detach().clone() if bias else None)
    return op, sampler, target, parts, start


def _direct_objective(op, weights, sampler, target):
    """||A W - Y||^2 with the dense weight of ``weights`` and explicit patches."""
    op = copy.deepcopy(op)
    with torch.no_grad():
        op.depthwise.weight.copy_(weights.dw.reshape(op.depthwise.weight.shape))
        op.pointwise.weight.copy_(weights.pw.reshape(op.pointwise.weight.shape))
        if weights.bias is not None:
            op.pointwise.bias.copy_(weights.bias)
    dense = op.to_dense_weight().reshape(op.out_channels, -1)
    prediction = sampler.patches() @ dense.T
    if weights.bias is not None:
        prediction = prediction + weights.bias
    return float((prediction - target).square().sum().detach())


@pytest.mark.parametrize("dm,bias", [(1, True), (1, False), (2, True)])
def test_objective_from_the_grams_is_the_direct_one(dm, bias):
    op, sampler, target, parts, start = _problem(dm=dm, bias=bias)
    assert separable.objective(parts, start) == pytest.approx(
        _direct_objective(op, start, sampler, target), rel=1e-10)


@pytest.mark.parametrize("dm,bias,stride", [(1, True, 1), (1, False, 2), (2, True, 1)])
def test_als_is_monotone_and_beats_the_svd_start(dm, bias, stride):
    op, sampler, target, parts, start = _problem(dm=dm, bias=bias, stride=stride)
    fitted, history = separable.alternating_least_squares(parts, start, 1e-3)
    assert len(history) >= 3
    assert all(b <= a for a, b in itertools.pairwise(history))
    assert history[-1] < 0.7 * history[0]
    assert history[-1] == pytest.approx(_direct_objective(op, fitted, sampler, target),
                                        rel=1e-8)
    # each step is the exact ridge least-squares optimum for the other factor fixed:
    # no single step from the result lowers the (unregularised) objective by much
    for step in (separable.pointwise_step, separable.depthwise_step):
        assert separable.objective(parts, step(parts, fitted, 1e-3)) > 0.99 * history[-1]


def test_conjugate_gradient_steps_are_monotone_and_near_the_exact_ones(monkeypatch):
    _, _, _, parts, start = _problem(m=8, n=8)
    _, exact_history = separable.alternating_least_squares(parts, start, 1e-3)
    monkeypatch.setattr(separable, "EXACT_LIMIT", 0)
    _, history = separable.alternating_least_squares(parts, start, 1e-3)
    assert all(b <= a for a, b in itertools.pairwise(history))
    assert history[-1] == pytest.approx(exact_history[-1], rel=0.02)
    # run to convergence, CG solves the same system as the Cholesky step
    monkeypatch.setattr(separable, "CG_ITERATIONS", 500)
    monkeypatch.setattr(separable, "CG_TOLERANCE", 1e-13)
    one = separable.depthwise_step(parts, start, 1e-3)
    monkeypatch.setattr(separable, "EXACT_LIMIT", 10**6)
    torch.testing.assert_close(one.dw, separable.depthwise_step(parts, start, 1e-3).dw,
                               rtol=1e-7, atol=1e-9)


def test_fit_converted_uses_als_and_a_realisable_target_is_reached():
    original = nn.Sequential(create_conv("dwsep", 6, 8, 3, bias=True).double())
    converted = copy.deepcopy(original)
    with torch.no_grad():  # perturb: the fit must find its way back
        for param in converted.parameters():
            param.add_(0.3 * torch.randn_like(param))
    x = torch.randn(3, 6, 10, 10, dtype=torch.float64)
    before = F.mse_loss(converted(x), original(x)).item()
    results = fit_converted(original, converted, ["0"], x, ridge=1e-9)
    assert results["0"].method == "alternating least-squares"
    assert results["0"].rel_error < 1e-4
    with torch.no_grad():
        assert F.mse_loss(converted(x), original(x)).item() < 1e-3 * before


def test_a_norm_between_falls_back_to_reconstruction():
    original = nn.Sequential(nn.Conv2d(4, 4, 3, 1, 1))
    converted = nn.Sequential(DepthwiseSeparableConv2d(4, 4, 3, norm_layer=nn.BatchNorm2d,
                                                       act_layer=nn.ReLU))
    x = torch.randn(8, 4, 8, 8)
    results = fit_converted(original, converted, ["0"], x)
    assert results["0"].method == "reconstructed"
    y = gather_outputs(original(x).detach(), sample_positions((8, 8, 8), 60000,
                                                              layer_seed("0")))
    assert results["0"].rel_error < 1.0 and y.shape == (512, 4)
