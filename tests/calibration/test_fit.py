"""fit_converted: the two forwards, hooks and bookkeeping; recalibrate_batchnorm."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from leanconv.calibration import FitResult, fit_converted, recalibrate_batchnorm
from leanconv.calibration.dense_form import dense_form
from leanconv.calibration.sampling import gather_outputs, layer_seed, sample_positions
from leanconv.inherit import inherit_weights
from leanconv.ops import HetConv2d, create_conv


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, 1, 1)
        self.bn = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(8, 8, 3, 2, 1)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.a(x)))
        x = self.drop(self.b(x))
        return self.head(x.mean((2, 3)))


def _pair():
    torch.manual_seed(0)
    original = Net().eval()
    with torch.no_grad():
        original.bn.running_mean.uniform_(-0.2, 0.2)
    converted = copy.deepcopy(original)
    for name in ("a", "b"):
        dense = getattr(converted, name)
        het = create_conv("hetconv:p=4", dense.in_channels, 8, 3, dense.stride[0], bias=True)
        inherit_weights(het, dense)
        setattr(converted, name, het)
    return original, converted


def _smooth(n=6):
    return F.avg_pool2d(torch.randn(n, 4, 12, 12), 3, 1, 1)


def test_layers_are_fitted_in_forward_order_on_the_converted_inputs():
    original, converted = _pair()
    x = _smooth()
    results = fit_converted(original, converted, ["b", "a"], x, samples=100)
    assert list(results) == ["a", "b"]  # forward order
    assert all(isinstance(r, FitResult) and r.method == "least-squares"
               for r in results.values())
    # layer b was fitted on the input the *fitted* layer a produces
    inputs = {}
    converted.b.register_forward_pre_hook(lambda m, args: inputs.setdefault("b", args[0]))
    targets = {}
    original.b.register_forward_hook(lambda m, args, out: targets.setdefault("b", out))
    with torch.no_grad():
        converted(x)
        original(x)
    positions = sample_positions((6, 6, 6), 100, layer_seed("b"))
    fitted = gather_outputs(converted.b(inputs["b"]).detach(), positions)
    wanted = gather_outputs(targets["b"], positions)
    error = float((fitted - wanted).square().sum() / wanted.square().sum())
    assert results["b"].rel_error == pytest.approx(error, rel=1e-4)
    # ... and is the least-squares optimum there: refitting on that input changes nothing
    again = copy.deepcopy(converted)
    fit_converted(original, again, ["b"], x, samples=100)
    torch.testing.assert_close(dense_form(again.b).weight, dense_form(converted.b).weight,
                               rtol=1e-4, atol=1e-5)


def test_targets_are_gathered_chunk_by_chunk_as_from_one_batch(monkeypatch):
    from leanconv.calibration import fit as fit_module

    original, converted = (m.double() for m in _pair())
    x = _smooth(70).double()  # chunks of 32, 32 and 6 images
    one_batch = copy.deepcopy(converted)
    results = fit_converted(original, converted, ["a", "b"], x, samples=500)
    monkeypatch.setattr(fit_module, "TARGET_CHUNK", 1000)
    again = fit_converted(original, one_batch, ["a", "b"], x, samples=500)
    for name in ("a", "b"):
        torch.testing.assert_close(dense_form(getattr(converted, name)).weight,
                                   dense_form(getattr(one_batch, name)).weight)
        assert results[name].rel_error == pytest.approx(again[name].rel_error, rel=1e-9)


def test_original_is_unchanged_and_modes_and_hooks_are_restored():
    original, converted = _pair()
    original.train()
    converted.eval()
    converted.b.train()
    state = copy.deepcopy(original.state_dict())
    fit_converted(original, converted, ["a", "b"], _smooth())
    for key, value in original.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(m.training for m in original.modules())
    assert converted.b.training and not converted.a.training
    for model in (original, converted):
        for module in model.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks


def test_the_fit_is_deterministic_and_better_than_data_free():
    original, converted = _pair()
    twin = copy.deepcopy(converted)
    x = _smooth()
    with torch.no_grad():
        before = F.mse_loss(converted.a(x), original.a(x)).item()
    fit_converted(original, converted, ["a"], x, samples=200)
    fit_converted(original, twin, ["a"], x, samples=200)
    assert torch.equal(converted.a.weight, twin.a.weight)
    with torch.no_grad():
        assert F.mse_loss(converted.a(x), original.a(x)).item() < 0.8 * before


def test_a_layer_called_twice_is_fitted_on_its_first_call():
    class Twice(nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return self.conv(torch.relu(self.conv(x)))

    original = Twice(nn.Conv2d(4, 4, 3, 1, 1))
    converted = Twice(HetConv2d(4, 4, 3, p=2))
    x = _smooth()
    results = fit_converted(original, converted, ["conv"], x)
    with torch.no_grad():
        y = original.conv(x)
        first = converted.conv(x)
    positions = sample_positions((6, 12, 12), 60000, layer_seed("conv"))
    error = float((gather_outputs(first, positions) - gather_outputs(y, positions)).square()
                  .sum() / gather_outputs(y, positions).square().sum())
    assert results["conv"].rel_error == pytest.approx(error, rel=1e-4)


def test_no_names_is_nothing_to_do():
    original, converted = _pair()
    state = copy.deepcopy(converted.state_dict())
    assert fit_converted(original, converted, [], _smooth()) == {}
    assert all(torch.equal(v, state[k]) for k, v in converted.state_dict().items())


@pytest.mark.parametrize("change,message", [
    (dict(names=["c"]), r"names holds 'c', which is not a module of original"),
    (dict(names=["a", "bn.x"]), r"names holds 'bn.x'"),
    (dict(names="a"), r"names='a' is invalid; expected a list of module names"),
    (dict(names=[3]), r"names holds 3; expected non-empty module names"),
    (dict(names=[""]), r"names holds ''"),
    (dict(images=torch.randn(4, 12, 12)), r"images of shape \(4, 12, 12\) .* is invalid"),
    (dict(images=torch.ones(2, 4, 8, 8, dtype=torch.long)), r"images of shape .*torch.int64"),
    (dict(images=torch.full((2, 4, 8, 8), float("nan"))), "images holds NaN"),
    (dict(images=[[1.0]]), "images must be a torch.Tensor"),
    (dict(samples=0), r"samples=0 is invalid; expected an int >= 1"),
    (dict(samples=2.5), r"samples=2.5 is invalid"),
    (dict(ridge=-1.0), r"ridge=-1.0 is invalid; expected a finite number >= 0"),
    (dict(ridge=float("inf")), r"ridge=inf is invalid"),
    (dict(batch_size=0), r"batch_size=0 is invalid"),
    (dict(batchnorm=1), r"batchnorm=1 is invalid; expected True or False"),
    (dict(original="net"), "original must be an nn.Module"),
])
def test_bad_arguments(change, message):
    original, converted = _pair()
    arguments = dict(original=original, converted=converted, names=["a"], images=_smooth(2))
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        fit_converted(arguments.pop("original"), arguments.pop("converted"),
                      arguments.pop("names"), arguments.pop("images"), **arguments)


def test_bad_models():
    original, _ = _pair()
    x = _smooth(2)
    with pytest.raises(ValueError, match="original and converted are the same model"):
        fit_converted(original, original, ["a"], x)
    shallow = copy.copy(original)
    shallow._modules = dict(original._modules)
    with pytest.raises(ValueError, match="layer 'a' of converted shares parameters"):
        fit_converted(original, shallow, ["a"], x)
    with pytest.raises(ValueError, match=r"both 'a' and 'a\.conv'"):
        outer = nn.Sequential()
        outer.a = nn.Sequential()
        outer.a.conv = nn.Conv2d(4, 4, 3)
        fit_converted(outer, copy.deepcopy(outer), ["a", "a.conv"], x)
    class Pair(nn.Module):  # returns a tuple: nothing to fit
        def forward(self, x):
            return x, x

    paired = nn.Sequential(nn.Conv2d(4, 4, 3), Pair())
    with pytest.raises(ValueError, match=r"layer '1' of original returns tuple; only layers"):
        fit_converted(paired, copy.deepcopy(paired), ["1"], x)
    unused = copy.deepcopy(original)
    unused.spare = nn.Conv2d(4, 4, 3)
    with pytest.raises(ValueError, match=r"layers \['spare'\] of original were not called"):
        fit_converted(unused, copy.deepcopy(unused), ["spare"], x)
    wrong = copy.deepcopy(original)
    wrong.a = nn.Conv2d(4, 8, 3, 1, 0)
    with pytest.raises(ValueError, match=r"fitting layer 'a': .*not the target's"):
        fit_converted(original, wrong, ["a"], x)


def test_a_linear_head_is_the_ridge_least_squares_solution_on_the_converted_features():
    original, converted = (m.double() for m in _pair())  # float64 throughout: exact
    x = _smooth(40).double()
    ridge = 1e-3
    results = fit_converted(original, converted, ["a", "b", "head"], x, ridge=ridge)
    assert list(results) == ["a", "b", "head"] and results["head"].method == "least-squares"
    features = {}
    converted.head.register_forward_pre_hook(lambda m, args: features.setdefault("x", args[0]))
    with torch.no_grad():
        converted(x)
        pooled = original.drop(original.b(torch.relu(original.bn(original.a(x))))).mean((2, 3))
        logits = original.head(pooled)
    # independently: numpy lstsq on [features, 1] with rows sqrt(lam) I for the ridge
    a = np.concatenate([features["x"].numpy(), np.ones((40, 1))], 1)
    lam = ridge * np.mean(np.sum(a * a, 0))
    rows = np.concatenate([a, np.sqrt(lam) * np.eye(a.shape[1])])
    right = np.concatenate([logits.numpy(), np.zeros((a.shape[1], 3))])
    solution = np.linalg.lstsq(rows, right, rcond=None)[0]
    np.testing.assert_allclose(converted.head.weight.detach().numpy(), solution[:-1].T,
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(converted.head.bias.detach().numpy(), solution[-1],
                               rtol=1e-8, atol=1e-10)


def test_batchnorm_statistics_are_re_estimated_in_the_fitting_forward():
    torch.manual_seed(0)
    original = nn.Sequential(nn.BatchNorm2d(4), nn.Conv2d(4, 8, 3, 1, 1), nn.BatchNorm2d(8),
                             nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1), nn.BatchNorm2d(8)).eval()
    for bn in (original[0], original[2], original[5]):
        bn.running_mean.uniform_(-1, 1)
    converted = copy.deepcopy(original)
    for index in (1, 4):
        het = create_conv("hetconv:p=4", 8 if index == 4 else 4, 8, 3, bias=True)
        inherit_weights(het, original[index])
        converted[index] = het
    x = _smooth(8)
    plain = copy.deepcopy(converted)
    fit_converted(original, plain, ["1", "4"], x)
    assert all(torch.equal(plain[i].running_mean, original[i].running_mean) for i in (0, 2, 5))
    fit_converted(original, converted, ["1", "4"], x, batchnorm=True)
    assert torch.equal(converted[0].running_mean, original[0].running_mean)  # before the fit
    inputs = {}
    for i in (2, 5):
        converted[i].register_forward_pre_hook(lambda m, args, i=i: inputs.setdefault(i, args[0]))
    with torch.no_grad():
        converted(x)
    for i in (2, 5):  # the statistics of its input in the fitted network, all images at once
        torch.testing.assert_close(converted[i].running_mean, inputs[i].mean((0, 2, 3)))
        torch.testing.assert_close(converted[i].running_var,
                                   inputs[i].var((0, 2, 3), unbiased=True))


def test_recalibrate_batchnorm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Dropout(0.9), nn.BatchNorm2d(4))
    model[2].momentum = 0.3
    model.train()
    model[0].eval()
    x = torch.randn(10, 3, 5, 5) * 2 + 1
    assert recalibrate_batchnorm(model, x, batch_size=10) == 1
    with torch.no_grad():
        features = model[0](x)  # dropout stays off: the eval-mode network's statistics
    bn = model[2]
    torch.testing.assert_close(bn.running_mean, features.mean((0, 2, 3)))
    torch.testing.assert_close(bn.running_var, features.var((0, 2, 3), unbiased=True))
    assert bn.momentum == 0.3 and model.training and model[2].training and not model[0].training
    # batches are averaged (cumulative moving average)
    recalibrate_batchnorm(model, x, batch_size=5)
    means = [features[:5].mean((0, 2, 3)), features[5:].mean((0, 2, 3))]
    torch.testing.assert_close(bn.running_mean, (means[0] + means[1]) / 2)
    assert recalibrate_batchnorm(nn.Sequential(nn.Conv2d(3, 3, 1)), x) == 0
    with pytest.raises(ValueError, match="batch_size=0 is invalid"):
        recalibrate_batchnorm(model, x, batch_size=0)
    with pytest.raises(ValueError, match="images of shape"):
        recalibrate_batchnorm(model, x[0])
    with pytest.raises(ValueError, match=r"model must be an nn\.Module"):
        recalibrate_batchnorm(None, x)
