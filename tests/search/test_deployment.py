import json

import pytest
import torch

from leanconv.cli import main
from leanconv.search import shrink
from leanconv.search.deployment import Deployment, specs_of, split_choice
from tests.search.test_shrink import SMALL

pytestmark = pytest.mark.usefixtures("quick_timing")  # conftest.py says why


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def test_choices_are_specs_and_specs_in_the_lower_precision():
    deployment = Deployment("onnxruntime", ("fp32", "int8"))
    assert deployment.choices(("keep", "dwsep")) == ("keep", "dwsep", "keep@int8", "dwsep@int8")
    assert Deployment().choices(("keep", "dwsep")) == ("keep", "dwsep")
    assert split_choice("dwsep@int8") == ("dwsep", "int8")
    assert split_choice("group:g=2,shuffle=1") == ("group:g=2,shuffle=1", None)
    assert specs_of({"a": "keep@int8", "b": "dwsep"}) == {"a": "keep", "b": "dwsep"}
    assert deployment.describe() == "onnxruntime fp32, int8 per layer"
    assert Deployment().cache_key() == {}  # PyTorch fp32 entries keep their cache files
    assert deployment.cache_key()["runtime"] == "onnxruntime"


@pytest.mark.parametrize("runtime, precisions, message", [
    ("tensorrt", ("fp32",), "runtime='tensorrt' is invalid"),
    ("onnxruntime", ("bf16",), "precision='bf16' is invalid for runtime 'onnxruntime'"),
    ("onnxruntime", ("int8", "int8"), "cannot be the model's .* or 'int8' alone"),
    ("openvino", ("default", "fp32"), "cannot be chosen per layer"),
    ("onnxruntime", ("fp32", "int8", "int8"), "at most one lower precision"),
])
def test_bad_runtimes_and_precisions_name_what_is_valid(runtime, precisions, message):
    with pytest.raises(ValueError, match=message):
        Deployment(runtime, precisions)


@pytest.mark.parametrize("runtime, precisions", [("onnxruntime", ("fp32", "int8")),
                                                 ("openvino", ("default", "int8"))])
def test_a_plan_runs_its_lowered_layers_alone_in_the_lower_precision(runtime, precisions):
    from leanconv.loading import load_model

    model, _ = load_model("resnet20_cifar", in_chans=1, num_classes=10)
    model.eval()
    deployment = Deployment(runtime, precisions, threads=1,
                            calibration=torch.randn(8, 1, 28, 28))
    layer = "stages.0.0.conv1.conv"
    built = deployment.artifact(model, (2, 1, 28, 28), {layer: f"keep@{precisions[1]}"})
    assert built.layers == (layer,) and built.precision == precisions[1]
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    assert (built(x) - expected).abs().max() < 0.1 * expected.abs().max()
    whole = deployment.artifact(model, (2, 1, 28, 28))
    assert whole.precision == precisions[0] and whole.layers is None
    speedups = deployment.speedups(model, {"plan": (model, {layer: f"keep@{precisions[1]}"})},
                                   (2, 1, 28, 28), rounds=2, min_run_time=0.01)
    # one layer of twenty in another precision: the same model within a few times its speed
    assert 0.3 < speedups["plan"].speedup < 3
    assert speedups["plan"].reference_ms > 0 and speedups["plan"].ms > 0


@pytest.mark.slow
def test_shrink_in_onnxruntime_writes_the_artifact_and_the_free_baselines(tmp_path, capsys):
    out = tmp_path / "out"
    small = {**SMALL, "baselines": True}
    result = shrink("resnet20_cifar", out=str(out), macs_ratio=0.8, epochs=0,
                    runtime="onnxruntime", precision=["fp32", "int8"], **small)
    rows = {(row["runtime"], row["precision"]) for row in result.baselines["rows"]}
    assert {("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")} <= rows
    assert result.setting["runtime"] == "onnxruntime"
    assert result.deployed["artifact"].startswith("onnxruntime")
    assert result.deployed["answer"] in ("shrunk", "free baseline")
    assert all(split_choice(choice)[0] in ("keep", "dwsep", "group:g=2,shuffle=1")
               for choice in result.plan.values())
    assert (out / "model.onnx").is_file() and "model.onnx" in result.files
    report = (out / "report.md").read_text()
    assert report.index("## Free baselines") < report.index("## The shrunk model")
    assert json.loads((out / "report.json").read_text())["deployed"] == result.deployed
    assert main(["eval", "--checkpoint", str(out / "model.onnx")]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_a_whole_model_in_int8_takes_operators_per_layer():
    from leanconv.converter import convert
    from leanconv.loading import load_model

    model, _ = load_model("resnet20_cifar", in_chans=1, num_classes=10)
    model.eval()
    deployment = Deployment("onnxruntime", ("int8",), threads=1,
                            calibration=torch.randn(8, 1, 28, 28))
    assert deployment.lowered is None and deployment.describe() == "onnxruntime int8"
    plan = {"stages.0.0.conv1.conv": "dwsep"}
    built = deployment.artifact(convert(model, plan)[0], (2, 1, 28, 28), plan)
    assert built.precision == "int8" and built.layers is None  # every layer in int8
    import onnx

    nodes = [node.op_type for node in onnx.load_from_string(built.data).graph.node]
    assert nodes.count("QuantizeLinear") > 20  # the rest of the network is int8 too
    assert built(torch.randn(2, 1, 28, 28)).shape == (2, 10)
