"""fold(): exact (1e-5, fp32) inference forms with no BatchNorm and no foldable shuffle left."""

import pytest
import torch
import torchvision
from torch import nn

from leanconv import convert
from leanconv.deploy import FoldedHetConv2d, FoldError, FoldReport, fold, register_fold_rule
from leanconv.deploy.batchnorm import FOLD_RULES
from leanconv.models import create_model, list_models, model_entry
from leanconv.ops import ChannelShuffle, HetConv2d, MixConv2d, create_conv
from tests.helpers import executed_ops, operator_specs, randomize_batchnorms

# every registered kind and option, plus deeper CompConvs and more groups
SPECS = [*operator_specs(), "group:g=4,shuffle=1", "hetconv:p=2,layout=interleaved",
         "mixconv:k=3.5.7,dilated=1", "compconv:c0=4", "compconv:c0=8"]


def _net(spec, stride=1, **kwargs):
    """operator -> BN -> ReLU -> dense 1x1 conv (a consumer a shuffle can fold into)."""
    op = create_conv(spec, 16, 32, 5 if spec == "stacked" else 3, stride, **kwargs)
    return randomize_batchnorms(nn.Sequential(op, nn.BatchNorm2d(32), nn.ReLU(),
                                              nn.Conv2d(32, 8, 1)))


def _close(folded, model, x):
    with torch.no_grad():
        expected, actual = model.eval()(x), folded(x)
    assert torch.allclose(actual, expected, atol=1e-5, rtol=1e-5), (actual - expected).abs().max()


def _batchnorms(model):
    norms = nn.modules.batchnorm._BatchNorm
    return [name for name, m in model.named_modules() if isinstance(m, norms)]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("hetconv", "mixconv", "groupconv"),
                         [("fused", "split", "grouped"), ("dense", "single", "dense")])
def test_every_operator_folds_exactly(spec, stride, hetconv, mixconv, groupconv):
    model = _net(spec, stride)
    x = torch.randn(2, 16, 12, 12)
    folded, report = fold(model, x.shape, hetconv=hetconv, mixconv=mixconv,
                          groupconv=groupconv)
    _close(folded, model, x)
    assert _batchnorms(folded) == []
    assert not any(isinstance(m, ChannelShuffle) for m in folded.modules())
    assert not any("batch_norm" in op for op in executed_ops(folded, x))
    assert report.max_abs_diff < 1e-5
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_fold_returns_the_model_and_its_report_and_attaches_nothing():
    model = _net("hetconv:p=4")
    before = set(vars(model))
    result = fold(model, (1, 16, 8, 8), hetconv="fused", mixconv="split")
    assert isinstance(result, tuple) and len(result) == 2
    folded, report = result
    assert isinstance(folded, nn.Module) and isinstance(report, FoldReport)
    assert not hasattr(folded, "fold_report") and not hasattr(model, "fold_report")
    assert set(vars(folded)) == before == set(vars(model))
    header, *lines, diff = report.table().splitlines()
    assert header.split() == ["module", "action", "detail"] and diff.startswith("max |folded")
    assert len(lines) == len(report.rows) > 0
    column = header.index("action")  # format_table's aligned columns
    assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines)


def test_internal_norms_fold_too():
    dwsep = _net("dwsep", norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU)
    stacked = _net("stacked", norm_layer=nn.BatchNorm2d)
    x = torch.randn(2, 16, 10, 10)
    for model in (randomize_batchnorms(dwsep), randomize_batchnorms(stacked)):
        folded, report = fold(model, x.shape)
        _close(folded, model, x)
        assert _batchnorms(folded) == []
        assert report.count("bn folded") == 2


def test_shuffle_kernels_leave_the_profile():
    model = _net("group:g=4,shuffle=1")
    x = torch.randn(1, 16, 8, 8)
    assert any("channel_shuffle" in op for op in executed_ops(model, x))
    folded, report = fold(model, x.shape)
    assert not any("channel_shuffle" in op for op in executed_ops(folded, x))
    assert report.count("shuffle folded") == 1


def test_shuffle_before_grouped_conv_is_kept_exactly():
    model = randomize_batchnorms(nn.Sequential(
        create_conv("group:g=4,shuffle=1", 16, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 1, groups=4)))
    x = torch.randn(2, 16, 8, 8)
    folded, report = fold(model, x.shape)
    _close(folded, model, x)
    assert report.count("shuffle folded") == 0
    assert _batchnorms(folded) == []


def test_shuffle_into_linear_through_global_pool():
    model = randomize_batchnorms(nn.Sequential(
        nn.Conv2d(3, 8, 3), ChannelShuffle(2), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)))
    x = torch.randn(2, 3, 9, 9)
    folded, _ = fold(model, x.shape)
    _close(folded, model, x)
    assert not any(isinstance(m, ChannelShuffle) for m in folded.modules())


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("conv", [None, "hetconv:p=4"])
def test_every_zoo_model_folds_exactly(name, conv):
    model = randomize_batchnorms(create_model(name, conv=conv))
    size = 32 if model_entry(name).input_size == 32 else 64
    x = torch.randn(2, 3, size, size)
    folded, report = fold(model, x.shape, hetconv="fused", mixconv="single")
    _close(folded, model, x)
    assert _batchnorms(folded) == []
    if any(isinstance(m, HetConv2d) for m in model.modules()):
        assert not any(isinstance(m, HetConv2d) for m in folded.modules())
        assert any(isinstance(m, FoldedHetConv2d) for m in folded.modules())
    if name.startswith("shufflenet_v2"):
        # the last shuffle of each stage feeds 1x1/depthwise convs; the others feed a split
        assert report.count("shuffle folded") == 3
    if name.startswith("shufflenet_v1_g1"):
        assert not any(isinstance(m, ChannelShuffle) for m in folded.modules())


@pytest.mark.slow
def test_converted_torchvision_model_folds():
    model = randomize_batchnorms(convert(torchvision.models.resnet18(), "hetconv:p=4")[0])
    x = torch.randn(1, 3, 64, 64)
    folded, _ = fold(model, x.shape)
    _close(folded, model, x)
    assert _batchnorms(folded) == []


def test_auto_measures_and_records_the_choice():
    model = nn.Sequential(create_conv("hetconv:p=4", 32, 32, 3), MixConv2d(32, 32, (3, 5, 7)))
    _, report = fold(model, (1, 32, 16, 16), threads=1)
    rows = {row.name: row for row in report.rows}
    assert rows["0"].action in ("foldedhetconv2d: fused", "foldedhetconv2d: dense")
    assert "fused" in rows["0"].detail and "dense" in rows["0"].detail and "ms" in rows["0"].detail
    assert rows["1"].action.startswith("mixconv2d: ")
    assert "merged 1+2 " in rows["1"].detail and "single " in rows["1"].detail
    _, unmeasured = fold(model)
    assert "not measured" in {row.name: row for row in unmeasured.rows}["0"].detail
    assert unmeasured.max_abs_diff is None


def test_a_group_conv_becomes_one_block_diagonal_conv_when_its_timer_says_so():
    model = randomize_batchnorms(nn.Sequential(
        create_conv("group:g=4,shuffle=1", 16, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 1, groups=4), create_conv("hetconv:p=4", 16, 16, 3)))
    asked = []

    def timer(name, forms, shape):  # a runtime where dense kernels win
        asked.append((name, tuple(forms), shape))
        return {form: 1.0 if form == "dense" else 2.0 for form in forms}

    x = torch.randn(2, 16, 8, 8)
    folded, report = fold(model, x.shape, timer=timer)
    _close(folded, model, x)
    assert asked == [("0", ("grouped", "dense"), (2, 16, 8, 8)),
                     ("4", ("fused", "dense"), (2, 16, 8, 8))]
    assert type(folded[0]) is nn.Conv2d and folded[0].groups == 1
    assert not any(isinstance(m, ChannelShuffle) for m in folded.modules())
    assert {row.name: row.action for row in report.rows}["0"] == "groupconv2d: dense"
    kept, _ = fold(model, x.shape, groupconv="grouped", timer=timer)
    assert any(isinstance(m, ChannelShuffle) for m in kept.modules())


def test_untraceable_model_falls_back_to_sequentials():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())

        def forward(self, x):
            return self.body(x) if x.sum() > -1e9 else x

    model = randomize_batchnorms(DataDependent())
    folded, report = fold(model, (1, 3, 8, 8))
    assert report.trace_error
    assert "not traceable, Sequential fallback" in report.table()
    assert _batchnorms(folded) == []
    _close(folded, model, torch.randn(1, 3, 8, 8))


def test_batchnorm_without_a_foldable_producer_is_kept_and_reported():
    shared = nn.Conv2d(4, 4, 3, padding=1)

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.pre, self.conv, self.bn = nn.BatchNorm2d(4), shared, nn.BatchNorm2d(4)

        def forward(self, x):  # pre-activation BN, and a conv called twice
            return self.bn(self.conv(self.conv(self.pre(x))))

    model = randomize_batchnorms(Shared())
    folded, report = fold(model, (1, 4, 6, 6))
    assert report.count("bn kept") == 2
    _close(folded, model, torch.randn(1, 4, 6, 6))


def test_a_wrong_rule_is_caught_by_verification():
    class Scaled(nn.Conv2d):
        pass

    @register_fold_rule(Scaled)
    def wrong(op, bn):
        return op  # forgets the BatchNorm

    try:
        model = randomize_batchnorms(nn.Sequential(Scaled(3, 4, 3), nn.BatchNorm2d(4)))
        with pytest.raises(FoldError, match="differs from the original"):
            fold(model, (1, 3, 8, 8))
    finally:
        FOLD_RULES.remove(Scaled)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model": "resnet18"}, r"model must be an nn.Module, got str"),
    ({"input_shape": (0, 3)}, r"input_shape=\(0, 3\) is invalid"),
    ({"hetconv": "fast"}, r"hetconv='fast' is invalid.*auto.*fused.*dense"),
    ({"mixconv": 1}, r"mixconv=1 is invalid"),
    ({"groupconv": "fused"}, r"groupconv='fused' is invalid.*grouped.*dense"),
    ({"timer": 3}, r"timer=3 is invalid; expected None \(PyTorch\) or a callable"),
    ({"threads": 0}, r"threads=0 is invalid"),
    ({"atol": -1}, r"atol=-1 is invalid"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    args = {"model": nn.Conv2d(3, 3, 1), **kwargs}
    with pytest.raises(ValueError, match=match):
        fold(args.pop("model"), **args)


def test_activations_run_in_place_only_when_nothing_else_reads_their_input():
    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.act, self.shared_act = nn.ReLU6(), nn.ReLU()

        def forward(self, x):
            y = self.act(self.bn(self.conv(x)))  # conv output: read only by the activation
            return y + self.shared_act(y)  # y is read twice: must not be overwritten

    model = randomize_batchnorms(Branches())
    folded, _ = fold(model, (1, 3, 6, 6))
    assert folded.act.inplace and not folded.shared_act.inplace
    _close(folded, model, torch.randn(1, 3, 6, 6))
    _, mobilenet = fold(create_model("mobilenet_v2_100"))
    assert mobilenet.count("in place") == 35  # every ReLU6


@pytest.mark.parametrize("parts", [(1, 3), (2, 2), (3, 1), (1, 1, 2), (4,)])
def test_merged_mixconv_is_exact(parts):
    from leanconv.deploy.single_kernel import merged_mixconv

    op = MixConv2d(32, 64, (3, 5, 7, 9), split="exponential", stride=2).eval()
    merged = merged_mixconv(op, parts)
    x = torch.randn(2, 32, 11, 11)
    _close(merged, op, x)
    if len(parts) > 1:
        assert [conv.kernel_size[0] for conv in merged.convs] == [
            max(op.kernel_sizes[sum(parts[:i]):sum(parts[:i + 1])]) for i in range(len(parts))]
    with pytest.raises(ValueError, match=r"parts=\(2, 3\) is invalid"):
        merged_mixconv(op, (2, 3))




class _Centred(nn.Module):
    """``x`` less its per-channel mean: after a conv with a bias of 1e4 the output is of the
    order of 1 and its fp32 rounding of the order of 1e4 x 6e-8, whatever folds before it."""

    def forward(self, x):
        return x - x.mean((2, 3), keepdim=True)


def _cancelling(conv_type):
    conv = conv_type(3, 8, 3)
    nn.init.constant_(conv.bias, 1e4)
    return randomize_batchnorms(nn.Sequential(conv, nn.BatchNorm2d(8), _Centred())).eval()


def test_verification_allows_the_models_own_fp32_rounding_and_no_more():
    model = _cancelling(nn.Conv2d)
    folded, report = fold(model, (2, 3, 8, 8))
    assert report.max_abs_diff > 1e-5  # the output's scale is 1: rounding beyond atol, accepted
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())

    class Scaled(nn.Conv2d):
        pass

    @register_fold_rule(Scaled)
    def wrong(op, bn):
        return op  # forgets the BatchNorm: off by the order of the output

    try:
        with pytest.raises(FoldError, match=r"or 10 x the original's own fp32 rounding"):
            fold(_cancelling(Scaled), (2, 3, 8, 8))
    finally:
        FOLD_RULES.remove(Scaled)
