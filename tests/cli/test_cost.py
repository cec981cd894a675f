import csv
import io
import json
import subprocess
import sys

import pytest

from leanconv.cli import main
from tests.helpers import hand_made_checkpoint


def test_cost_table_and_compare(capsys, tmp_path):
    assert main(["cost", "resnet20_cifar", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "stages" in out and "TOTAL" in out and "269,722" in out
    assert main(["cost", "resnet20_cifar", "--compare", "standard", "hetconv:p=4",
                 "mixconv:k=3.5.7,split=exp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("conv") and len(lines) == 4
    assert lines[1].split()[0] == "standard" and lines[3].split()[0] == "mixconv:k=3.5.7,split=exp"
    out_file = tmp_path / "cost.json"
    assert main(["cost", "resnet20_cifar", "--conv", "hetconv:p=4", "--format", "json",
                 "--out", str(out_file)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out_file}"
    data = json.loads(out_file.read_text())
    assert data["totals"]["macs_analytic"] < data["totals"]["macs_executed"]


def test_cost_compare_formats(capsys):
    args = ["cost", "resnet20_cifar", "--compare", "standard", "hetconv:p=4", "--format"]
    assert main([*args, "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["conv"] for r in rows] == ["standard", "hetconv:p=4"]
    assert rows[0]["params"] == "269722" and float(rows[1]["macs_analytic_vs_first"]) < 0.5
    assert main([*args, "md"]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| conv | params |") and md[1].startswith("|---|")
    assert md[2].startswith("| standard | 269,722 |")
    assert main([*args, "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records[1]["conv"] == "hetconv:p=4" and records[0]["params_vs_first"] == 1.0


def test_cost_single_formats(capsys):
    assert main(["cost", "resnet20_cifar", "--format", "csv", "--depth", "1"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == ["stem", "stages", "final_conv", "head"]
    assert rows[0]["input_shape"] == "(1, 3, 32, 32)" and rows[3]["params"] == "650"
    assert main(["cost", "resnet20_cifar", "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("| name | type |")


def test_cost_of_any_model_reference(capsys, tmp_path):
    assert main(["cost", "torchvision:resnet18", "--conv", "hetconv:p=4", "--input",
                 "3x64x64", "--depth", "0"]) == 0
    assert "HetConv" not in capsys.readouterr().out  # depth 0: the model's total only
    hand_made_checkpoint(tmp_path / "best.pt")
    assert main(["cost", str(tmp_path / "best.pt"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_shape"] == [1, 1, 28, 28]


def test_cost_errors(capsys):
    assert main(["cost", "resnet2", "--compare", "standard"]) == 2
    assert "close matches" in capsys.readouterr().err
    assert main(["cost", "resnet20_cifar", "--conv", "dwsep", "--compare", "standard"]) == 2
    assert "either --conv or --compare" in capsys.readouterr().err
    run = subprocess.run([sys.executable, "-m", "leanconv", "cost", "resnet18", "--input",
                          "3x0x4"], capture_output=True, text=True)
    assert run.returncode == 2 and "'3x0x4' is not CxHxW" in run.stderr


def test_cost_latency_in_a_runtime_times_the_whole_model_there(capsys):
    assert main(["cost", "resnet20_cifar", "--latency", "--runtime", "onnxruntime",
                 "--precision", "int8", "--data", "synthetic", "--input", "1x28x28",
                 "--threads", "1", "--depth", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("latency of the model in onnxruntime int8 (int8 calibrated on 64 "
                        "training images of synthetic); the per-layer latency is PyTorch's "
                        "only: here the whole model's (TOTAL)")
    total = lines[-1].split()
    assert total[0] == "TOTAL" and float(total[-2]) > 0
    assert lines[2].split()[-2:] == ["-", "-"]  # a layer: not timed in the runtime


@pytest.mark.slow
def test_cost_compare_in_a_runtime_and_int8_on_random_images(capsys):
    assert main(["cost", "resnet20_cifar", "--compare", "standard", "dwsep", "--latency",
                 "--runtime", "onnxruntime", "--precision", "int8", "--input", "1x28x28",
                 "--threads", "1", "--format", "md"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("latency in onnxruntime int8, side by side (int8 calibrated on 64 random "
                        "normal images: give --data for the model's own; the latency does not "
                        "depend on them)")
    assert lines[3].startswith("| standard |") and lines[4].startswith("| dwsep |")


@pytest.mark.parametrize(("args", "message"), [
    (["--runtime", "onnxruntime"], "say where the latency is measured; measure it"),
    (["--latency", "--precision", "int8"], "precision='int8' is invalid for runtime 'torch'"),
    (["--latency", "--runtime", "tvm"], "runtime='tvm' is invalid"),
    (["--latency", "--runtime", "onnxruntime", "--data", "synthetic"],
     "--data gives the images int8 is calibrated on; it applies with --latency --precision "
     "int8 only"),
    (["--latency", "--runtime", "onnxruntime", "--device", "cuda"],
     "device='cuda' is invalid with runtime='onnxruntime'"),
])
def test_cost_runtime_errors_before_any_work(args, message, capsys):
    assert main(["cost", "resnet20_cifar", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leanconv cost: error: ") and message in err
