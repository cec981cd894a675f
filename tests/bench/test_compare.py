import csv
import io

import pytest
from torch import nn

from leanconv import create_conv, create_model, profile
from leanconv.bench import compare_convs, compare_ops, zoo_costs
from leanconv.tables import records_table


def test_compare_ops_counts_each_operator():
    records = compare_ops(16, 16, 3, 1, 8, ["standard", "hetconv:p=4", "dwsep"])
    by_spec = {r["spec"]: r for r in records}
    assert by_spec["standard"]["macs_executed"] == 16 * 16 * 9 * 64
    assert by_spec["standard"]["macs_analytic"] is None  # no formula of its own
    het = by_spec["hetconv:p=4"]
    assert het["params"] == 16 * (4 * 9 + 12) and het["module"] == "HetConv2d"
    assert het["macs_analytic"] == 16 * (4 * 9 + 12) * 64 < het["macs_executed"]
    assert het["vs_first"] == pytest.approx(het["macs_executed"] / (16 * 16 * 9 * 64))
    strided = compare_ops(16, 16, 3, 2, 8, ["hetconv:p=4"])[0]
    assert strided["macs_analytic"] == 16 * (4 * 9 + 12) * 16  # 4x4 output pixels


def test_compare_convs_by_reference_and_by_module():
    records = compare_convs("resnet20_cifar", ["standard", "hetconv:p=4"])
    assert [r["conv"] for r in records] == ["standard", "hetconv:p=4"]
    standard, het = records
    assert standard["params"] == 269_722 and standard["params_vs_first"] == 1.0
    assert het["macs_analytic_vs_first"] == pytest.approx(
        het["macs_analytic"] / standard["macs_analytic"])
    assert het["macs_analytic_vs_first"] < 0.5 and "latency_ms" not in het
    assert het["macs_executed"] == profile(create_model("resnet20_cifar", conv="hetconv:p=4"),
                                           (1, 3, 32, 32)).totals["macs_executed"]
    wide = compare_convs("resnet20_cifar", ["standard"], batch=4)[0]
    assert wide["macs_executed"] == 4 * standard["macs_executed"]
    gray = compare_convs("resnet20_cifar", ["standard"], (1, 1, 28, 28))[0]
    assert gray["params"] < standard["params"]  # in_chans=1 from the input shape
    module = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    timed = compare_convs(module, ["standard", "hetconv:p=4"], (1, 8, 8, 8), latency=True,
                          threads=1)
    assert timed[1]["params"] < timed[0]["params"] and timed[1]["latency_ms"] > 0
    assert timed[1]["latency_ms_vs_first"] == pytest.approx(timed[1]["latency_ms"]
                                                            / timed[0]["latency_ms"])


@pytest.mark.parametrize("call,message", [
    (lambda: compare_convs("resnet20_cifar", "standard"), "specs='standard' is invalid"),
    (lambda: compare_convs("resnet20_cifar", []), r"specs=\[\] is invalid"),
    (lambda: compare_convs("resnet20_cifar", ["dwsep", "dwsep"]), "more than once"),
    (lambda: compare_convs(nn.Conv2d(3, 3, 3), ["dwsep"]), "input_shape is required"),
    (lambda: compare_convs("resnet20_cifar", ["dwsep"], (2, 3, 8, 8), batch=2), "drop batch"),
    (lambda: compare_convs("resnet20_cifar", ["dwsep"], device="tpu"), "device='tpu'"),
    (lambda: compare_convs(3, ["dwsep"]), "model must be a model reference"),
    (lambda: compare_ops(0), "in_channels=0"),
    (lambda: zoo_costs("nothing*"), r"no model matches pattern='nothing\*'"),
])
def test_compare_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_zoo_costs():
    records = zoo_costs("resnet*_cifar")
    assert [r["model"] for r in records] == ["resnet20_cifar", "resnet56_cifar"]
    assert records[0]["params"] == 269_722 and records[0]["input_shape"] == (3, 32, 32)
    het = zoo_costs("resnet20_cifar", conv="hetconv:p=4")[0]
    assert het["macs_analytic"] < het["macs_executed"] < records[0]["macs_executed"]


def test_csv_cells_with_quotes_and_commas_round_trip():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module('conv "a", b', create_conv("standard", 3, 4, 3))

        def forward(self, x):
            return self.get_submodule('conv "a", b')(x)

    text = profile(Odd(), (1, 3, 8, 8)).to_csv_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["name"] == 'conv "a", b' and rows[0]["params"] == str(4 * 3 * 9)
    table = records_table([{"conv": 'he said "hi"', "params": 1_000}], ["conv", "params"])
    assert list(csv.reader(io.StringIO(table))) == [["conv", "params"],
                                                    ['he said "hi"', "1000"]]


def test_compare_convs_times_in_a_runtime():
    module = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    timed = compare_convs(module, ["standard", "hetconv:p=4"], (1, 8, 8, 8), latency=True,
                          threads=1, runtime="onnxruntime")
    assert timed[1]["latency_ms"] > 0 and timed[0]["latency_ms_vs_first"] == 1.0
    with pytest.raises(ValueError, match=r"precision='int8' needs calibration images"):
        compare_convs(module, ["standard"], (1, 8, 8, 8), latency=True, threads=1,
                      runtime="onnxruntime", precision="int8")
    with pytest.raises(ValueError, match=r"runtime='openvino' precision='default' say where "
                                         r"the latency is measured"):
        compare_convs(module, ["standard"], (1, 8, 8, 8), runtime="openvino")
    with pytest.raises(ValueError, match=r"device='cuda' is invalid with runtime='torch' "
                                         r"precision='bf16'"):
        compare_convs(module, ["standard"], (1, 8, 8, 8), latency=True, device="cuda",
                      runtime="torch", precision="bf16")
