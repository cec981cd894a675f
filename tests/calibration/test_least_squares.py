"""The masked dense least-squares fit: dense forms, sampling, patches and the solve, checked
against independent constructions (F.unfold patches, numpy.linalg.lstsq)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from leanconv.calibration import fit_converted
from leanconv.calibration.dense_form import dense_form, dense_mask, load_dense
from leanconv.calibration.least_squares import symmetric_gram
from leanconv.calibration.sampling import (
    PatchSampler,
    gather_outputs,
    layer_seed,
    sample_positions,
)
from leanconv.ops import create_conv

# (spec, in, out): every masked-dense operator kind and layout
KINDS = [
    ("standard", 8, 8),
    ("dilated:d=2", 8, 8),
    ("group:g=2", 8, 8),
    ("group:g=4,shuffle=1", 8, 8),
    ("depthwise", 8, 16),
    ("hetconv:p=2", 8, 8),
    ("hetconv:p=4,layout=interleaved", 8, 8),
    ("hetconv:p=2,layout=interleaved", 8, 12),
    ("mixconv:k=3.5.7", 8, 8),
    ("mixconv:k=3.5,dilated=1,split=exp", 8, 16),
    ("mixgroup:k=3.5", 8, 12),
    ("mixgroup:k=1.3", 8, 8),
]
RIDGE = 1e-3


def _op(spec, m, n, stride, bias):
    op = create_conv(spec, m, n, 3, stride, bias=bias).double()
    with torch.no_grad():
        for param in op.parameters():
            param.uniform_(-1, 1)  # bias included: not zero
    return op


@pytest.mark.parametrize("spec,m,n", KINDS)
@pytest.mark.parametrize("stride", [1, 2])
def test_dense_form_is_the_operator(spec, m, n, stride):
    op = _op(spec, m, n, stride, True)
    x = torch.randn(2, m, 11, 10, dtype=torch.float64)
    form = dense_form(op)
    g = form.geometry
    torch.testing.assert_close(F.conv2d(x, form.weight, form.bias, g.stride, g.padding,
                                        g.dilation), op(x), rtol=0, atol=1e-12)
    # the generic mask (all ones) is exactly where random weights are non-zero
    assert torch.equal(dense_mask(op), form.weight != 0)
    # loading a dense weight on the mask is exact
    weight = torch.randn_like(form.weight) * dense_mask(op)
    bias = torch.randn(n, dtype=torch.float64)
    load_dense(op, g, weight, bias)
    again = dense_form(op)
    assert torch.equal(again.weight, weight) and torch.equal(again.bias, bias)


def test_positions_are_seeded_uniform_without_replacement():
    positions = sample_positions((3, 5, 7), 60, 123)
    assert torch.equal(positions, sample_positions((3, 5, 7), 60, 123))
    assert not torch.equal(positions, sample_positions((3, 5, 7), 60, 124))
    assert len(positions.unique()) == 60 and positions.max() < 105
    assert torch.equal(positions, positions.sort().values)
    assert torch.equal(sample_positions((3, 5, 7), 1000, 0), torch.arange(105))
    assert layer_seed("layer1.0.conv1") == layer_seed("layer1.0.conv1") != layer_seed("x")
    # every position about equally likely
    counts = torch.zeros(105)
    for seed in range(300):
        counts[sample_positions((3, 5, 7), 21, seed)] += 1
    assert counts.min() > 30 and counts.max() < 100  # expected 60 each


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (2, 3, 2)])
def test_patches_are_unfold_at_the_positions(stride, padding, dilation):
    from leanconv.calibration.sampling import Geometry

    x = torch.randn(3, 5, 12, 11)
    geometry = Geometry((3, 3), (stride, stride), (padding, padding), (dilation, dilation))
    ho, wo = geometry.output_size(12, 11)
    positions = sample_positions((3, ho, wo), 40, 7)
    sampler = PatchSampler(x, geometry, positions, (3, ho, wo))
    unfolded = F.unfold(x, 3, dilation, padding, stride).permute(0, 2, 1).reshape(-1, 45)
    assert torch.equal(sampler.patches(), unfolded[positions])
    with_ones = sampler.patches_t(5, 17, ones=True)
    assert torch.equal(with_ones[:45], unfolded[positions[5:17]].T)
    assert torch.equal(with_ones[45], torch.ones(12))
    y = torch.randn(3, 4, ho, wo)
    assert torch.equal(gather_outputs(y, positions),
                       y.permute(0, 2, 3, 1).reshape(-1, 4)[positions])
    with pytest.raises(ValueError, match="not the target's"):
        PatchSampler(x, geometry, positions, (3, ho + 1, wo))


def test_symmetric_gram_equals_the_full_product(monkeypatch):
    import leanconv.calibration.least_squares as ls

    monkeypatch.setattr(ls, "_BLOCK", 7)
    at = torch.randn(3, 30, 50, dtype=torch.float64)
    torch.testing.assert_close(symmetric_gram(at), at @ at.transpose(1, 2))


def _lstsq_reference(x, positions, op, target, ridge, bias):
    """The ridge least-squares dense weight, built independently: F.unfold patches, the mask
    from the dense form of random weights, numpy lstsq with sqrt(lam) I rows."""
    form = dense_form(op)
    g = form.geometry
    unfolded = F.unfold(x, g.kernel, g.dilation, g.padding, g.stride)
    a = unfolded.permute(0, 2, 1).reshape(-1, unfolded.shape[1])[positions].numpy()
    mask = (form.weight != 0).reshape(form.weight.shape[0], -1).numpy()
    weight = np.zeros(mask.shape)
    biases = np.zeros(mask.shape[0])
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    for index, pattern in enumerate(patterns):  # channels with one mask row: one solve
        channels = np.flatnonzero(inverse.reshape(-1) == index)
        design = a[:, pattern]
        if bias:
            design = np.concatenate([design, np.ones((len(design), 1))], 1)
        lam = ridge * np.mean(np.sum(design**2, 0))
        k = design.shape[1]
        rows = np.concatenate([design, np.sqrt(lam) * np.eye(k)])
        right = np.concatenate([target[:, channels], np.zeros((k, len(channels)))])
        solution = np.linalg.lstsq(rows, right, rcond=None)[0]  # (k, channels)
        weight[np.ix_(channels, np.flatnonzero(pattern))] = solution[:k - bias].T
        if bias:
            biases[channels] = solution[-1]
    return weight.reshape(form.weight.shape), biases


@pytest.mark.parametrize("spec,m,n", KINDS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_fit_equals_an_independent_least_squares_solution(spec, m, n, stride, bias):
    original = nn.Sequential(nn.Conv2d(m, n, 3, stride, 1, bias=True).double())
    converted = nn.Sequential(_op(spec, m, n, stride, bias))
    x = torch.randn(3, m, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        y = original(x)
    samples = 90
    results = fit_converted(original, converted, ["0"], x, samples=samples, ridge=RIDGE)
    assert results["0"].method == "least-squares"
    b, _, ho, wo = y.shape
    positions = sample_positions((b, ho, wo), samples, layer_seed("0"))
    target = gather_outputs(y, positions).numpy()
    weight, biases = _lstsq_reference(x, positions, converted[0], target, RIDGE, bias)
    form = dense_form(converted[0])
    np.testing.assert_allclose(form.weight.detach().numpy(), weight, rtol=1e-8, atol=1e-10)
    if bias:
        np.testing.assert_allclose(form.bias.detach().numpy(), biases, rtol=1e-8, atol=1e-10)
    # the reported error is the error on the samples
    with torch.no_grad():
        fitted = gather_outputs(converted(x), positions).numpy()
    error = ((fitted - target) ** 2).sum() / (target**2).sum()
    assert results["0"].rel_error == pytest.approx(error, rel=1e-9)


@pytest.mark.parametrize("spec,m,n", KINDS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_a_realisable_target_is_reproduced(spec, m, n, stride, bias):
    original = nn.Sequential(_op(spec, m, n, stride, bias))
    converted = nn.Sequential(_op(spec, m, n, stride, bias))
    x = torch.randn(4, m, 12, 12, dtype=torch.float64)
    results = fit_converted(original, converted, ["0"], x, ridge=1e-12)
    assert results["0"].rel_error < 1e-14
    test = torch.randn(2, m, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(converted(test), original(test), rtol=0, atol=1e-6)


def test_float32_fit_is_close_to_the_float64_one():
    torch.manual_seed(1)
    original = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1))
    converted = nn.Sequential(create_conv("hetconv:p=4", 16, 16, 3))
    wide = [copy.deepcopy(model).double() for model in (original, converted)]
    x = torch.randn(4, 16, 14, 14)
    fit_converted(original, converted, ["0"], x, samples=500)
    fit_converted(wide[0], wide[1], ["0"], x.double(), samples=500)
    torch.testing.assert_close(converted[0].to_dense_weight().double(),
                               wide[1][0].to_dense_weight(), rtol=1e-4, atol=1e-5)
