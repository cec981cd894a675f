import json
import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from leanconv import create_conv, create_model, list_models
from leanconv.cost import profile
from leanconv.models import model_entry
from leanconv.ops import ChannelShuffle, HetConv2d
from tests.helpers import operator_specs


def _macs(module, shape):
    return profile(module, shape).totals


@pytest.mark.parametrize("conv,formula", [
    (nn.Conv2d(8, 16, 3, padding=1), lambda: 16 * 8 * 9 * 10 * 10),
    (nn.Conv2d(8, 16, 3, padding=1, groups=4), lambda: 16 * 2 * 9 * 10 * 10),
    (nn.Conv2d(8, 8, 5, padding=2, groups=8), lambda: 8 * 25 * 10 * 10),
    (nn.Conv2d(8, 16, 3, padding=2, dilation=2), lambda: 16 * 8 * 9 * 10 * 10),
    (nn.Conv2d(8, 16, 3, stride=2, padding=1), lambda: 16 * 8 * 9 * 5 * 5),
    (nn.ConvTranspose2d(8, 16, 4, stride=2, padding=1), lambda: 8 * 10 * 10 * 16 * 16),
])
def test_conv_macs_closed_form(conv, formula):
    totals = _macs(conv, (1, 8, 10, 10))
    assert totals["macs_executed"] == totals["macs_analytic"] == formula()


def test_linear_macs_and_flops():
    totals = _macs(nn.Linear(32, 10), (4, 32))
    assert totals["macs_executed"] == 4 * 32 * 10
    assert totals["flops"] == 2 * 4 * 32 * 10 + 4 * 10  # + bias adds


@pytest.mark.parametrize("spec,formula", [
    ("hetconv:p=4", lambda m, n, k, d: d * n * (m * k * k / 4 + m - m / 4)),
    ("hetconv:p=8,layout=block", lambda m, n, k, d: d * n * (m * k * k / 8 + m - m / 8)),
    ("dwsep", lambda m, n, k, d: d * m * (k * k + n)),
    ("group:g=4", lambda m, n, k, d: d * n * m * k * k / 4),
    ("mixconv:k=3.5.7", lambda m, n, k, d: d * (n // m) * sum(
        c * kk * kk for c, kk in zip([12, 10, 10], [3, 5, 7], strict=True))),
    ("stacked", lambda m, n, k, d: d * 9 * (m * n + n * n)),
])
def test_operator_analytic_macs_are_their_papers_formulas(spec, formula):
    m, n, k, side = 32, 64, 3 if spec != "stacked" else 5, 8
    op = create_conv(spec, m, n, k)
    totals = _macs(op, (1, m, side, side))
    assert totals["macs_analytic"] == formula(m, n, k, side * side)


@pytest.mark.parametrize("spec", [s for s in operator_specs() if not s.startswith("deform")])
def test_analytic_macs_are_one_per_weight_and_pixel(spec):
    """At stride 1 every weight of these operators is applied once per output pixel (an
    identity copy costs nothing), so analytic MACs = weights x pixels, counted from the
    module's own tensors, independently of each operator's formula; the kernels execute
    exactly that, except HetConv's zero diagonal blocks."""
    m, n, side = 32, 64, 6
    op = create_conv(spec, m, n, 5)
    totals = _macs(op, (2, m, side, side))
    weights = sum(p.numel() for p in op.parameters())
    assert totals["macs_analytic"] == 2 * side * side * weights
    if not spec.startswith("hetconv"):
        assert totals["macs_executed"] == totals["macs_analytic"]


def test_hetconv_executed_includes_the_zero_diagonal():
    het = HetConv2d(32, 64, 3, p=4)
    totals = _macs(het, (2, 32, 8, 8))
    assert totals["macs_executed"] - totals["macs_analytic"] == 2 * 64 * 64 * (32 // 4)


@pytest.mark.parametrize("conv,paper", [("hetconv:p=1", 313.74e6), ("hetconv:p=4", 105.98e6)])
def test_hetconv_vgg16_cifar_matches_the_paper(conv, paper):
    """The paper counts conv + linear MACs (as we do) plus a little more (BN/ReLU): 0.5%."""
    totals = _macs(create_model("vgg16_cifar", conv=conv), (1, 3, 32, 32))
    assert totals["macs_analytic"] == pytest.approx(paper, rel=0.005)


@pytest.mark.parametrize("h,c1,c2", [(14, 64, 64), (7, 32, 128), (28, 128, 16)])
def test_memory_access_of_1x1_conv_is_shufflenet_v2s(h, c1, c2):
    totals = _macs(nn.Conv2d(c1, c2, 1, bias=False), (1, c1, h, h))
    assert totals["memory_access"] == h * h * (c1 + c2) + c1 * c2
    assert totals["memory_access_bytes"] == 4 * totals["memory_access"]


def test_shuffle_copy_costs_twice_its_tensor_and_views_cost_nothing():
    shape = (2, 12, 5, 5)
    numel = math.prod(shape)
    assert _macs(ChannelShuffle(3), shape)["memory_access"] == 2 * numel

    class Views(nn.Module):
        def forward(self, x):
            return x.view(2, 3, 4, 25).transpose(1, 2)[:, :2]

    assert _macs(Views(), shape)["memory_access"] == 0


def test_g1_memory_access_is_lowest_at_equal_widths():
    """ShuffleNet V2 Table 1 in shape: same FLOPs, c1:c2 = 1:1, 1:2, 1:6, 1:12."""
    flops = 128 * 128
    rows = []
    for ratio in (1, 2, 6, 12):
        c1 = int(math.sqrt(flops / ratio))
        c2 = flops // c1
        g1 = profile(nn.Conv2d(c1, c2, 1, bias=False), (1, c1, 28, 28)).indicators["G1"][0]
        rows.append(g1)
    accesses = [r["memory_access"] for r in rows]
    assert accesses == sorted(accesses) and accesses[0] < accesses[-1]
    assert rows[0]["efficiency"] == pytest.approx(1.0, abs=1e-3)


def test_g2_memory_access_grows_with_groups_at_fixed_flops():
    """ShuffleNet V2 Table 2 in shape: g = 1, 2, 4, 8 with c scaled to keep FLOPs."""
    penalties, accesses = [], []
    for g in (1, 2, 4, 8):
        c = int(256 * math.sqrt(g)) // g * g
        conv = nn.Conv2d(c, c, 1, groups=g, bias=False)
        total = profile(conv, (1, c, 28, 28))
        accesses.append(total.totals["memory_access"])
        if g > 1:
            penalties.append(total.indicators["G2"][0]["penalty"])
    assert accesses == sorted(accesses)
    assert penalties == sorted(penalties) and penalties[0] > 1


def test_g3_and_g4_on_a_zoo_model():
    result = profile(create_model("shufflenet_v2_x1_0"), (1, 3, 224, 224))
    g3 = result.indicators["G3"]
    assert len(g3) == 16 and all(row["kernels"] > 5 for row in g3)
    assert 0 < result.indicators["G4"]["share"] < 1


@pytest.mark.parametrize("name", list_models())
def test_executed_macs_equal_torch_flop_counter(name):
    model = create_model(name).eval()
    size = model_entry(name).input_size
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, size, size))
    assert profile(model, (1, 3, size, size)).totals["macs_executed"] == (
        counter.get_total_flops() // 2)


@pytest.mark.slow
def test_conv_and_linear_macs_equal_fvcore_on_every_zoo_model():
    fvcore = pytest.importorskip("fvcore.nn", reason="fvcore is in the 'compare' extra (make "
                                                     "test installs it)")
    for name in list_models():
        model = create_model(name).eval()
        size = 32 if model_entry(name).input_size == 32 else 64
        analysis = fvcore.FlopCountAnalysis(model, torch.randn(1, 3, size, size))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        ops = analysis.by_operator()
        fv = sum(ops.get(k, 0) for k in ("conv", "linear", "addmm", "matmul", "bmm"))
        assert profile(model, (1, 3, size, size)).totals["macs_executed"] == fv, name


def test_layers_add_up_to_the_totals_and_own_ops_are_seen():
    result = profile(create_model("resnet18"), (1, 3, 64, 64))
    for key in ("macs_executed", "macs_analytic", "flops", "memory_access"):
        assert sum(r[key] for r in result.layers) == result.totals[key]
    own = [r for r in result.layers if r["type"] == "BasicBlock (own ops)"]
    assert len(own) == 8 and all(r["macs_executed"] == 0 and r["memory_access"] for r in own)


def test_no_side_effects_and_repeatable():
    model = create_model("mixnet_s")
    model.train()
    keys = list(model.state_dict())
    first = profile(model, (1, 3, 64, 64)).to_dict()
    with torch.inference_mode():
        second = profile(model, (1, 3, 64, 64)).to_dict()
    with torch.no_grad():
        third = profile(model, (1, 3, 64, 64)).to_dict()
    assert first == second == third
    assert list(model.state_dict()) == keys and model.training
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert not nn.modules.module._global_forward_hooks
    assert not nn.modules.module._global_forward_pre_hooks


def test_unknown_ops_are_listed_loudly():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1)

    result = profile(Odd(), (1, 4, 3, 3))
    assert result.unknown_ops == {"aten.cumsum": 1}
    assert "WARNING: no FLOP formula for aten.cumsum x1" in result.table()
    assert result.totals["memory_access"] == 2 * 36  # its traffic is still counted


@pytest.mark.slow
def test_latency_is_measured_by_replay():
    model = create_model("resnet20_cifar")
    result = profile(model, (2, 3, 32, 32), latency=True, threads=1, min_run_time=0.01)
    assert result.totals["latency_ms"] > 0 and result.totals["latency_iqr_ms"] >= 0
    assert all(r["latency_ms"] > 0 for r in result.modules)
    assert "latency ms" in result.table(depth=1)


def test_renderings(tmp_path):
    result = profile(create_model("resnet20_cifar"), (1, 3, 32, 32))
    table = result.table(depth=1)
    assert table.splitlines()[0].startswith("name") and "TOTAL" in table.splitlines()[-1]
    assert result.to_markdown().startswith("| name |")
    result.to_json(tmp_path / "p.json")
    loaded = json.loads((tmp_path / "p.json").read_text())
    assert loaded["totals"]["macs_executed"] == result.totals["macs_executed"]
    result.to_csv(tmp_path / "sub" / "p.csv", depth=2)
    lines = (tmp_path / "sub" / "p.csv").read_text().splitlines()
    assert lines[0].startswith("name,type") and len(lines) == 1 + len(result.rows(2))
    assert not list(tmp_path.glob("**/*.tmp"))


@pytest.mark.parametrize("kwargs,message", [
    ({"input_shape": (3, 224)}, r"the model failed on an input of shape \(3, 224\)"),
    ({"input_shape": (0, 3, 8, 8)}, "input_shape="),
    ({"input_shape": "1x3x8x8"}, "input_shape="),
    ({"device": "tpu"}, "device='tpu'"),
    ({"dtype": torch.int64}, "dtype="),
    ({"threads": 0}, "threads=0"),
])
def test_argument_errors(kwargs, message):
    model = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=message):
        profile(model, **kwargs)


def test_model_and_depth_errors():
    with pytest.raises(ValueError, match=r"model must be an nn\.Module"):
        profile("resnet18")
    with pytest.raises(ValueError, match="depth=-1"):
        profile(nn.Conv2d(3, 4, 3), (1, 3, 8, 8)).table(depth=-1)
