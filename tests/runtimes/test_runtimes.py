"""Every runtime x precision builds an artifact that follows the PyTorch model (fp32 to 1e-4,
bf16 and int8 loosely, with the same top-1 class on most inputs), saves and loads with its
metadata, checks its input, and says clearly what is missing or invalid."""

import importlib.util
import json

import onnx
import pytest
import torch
from torch import nn

from leanconv.data.fashion_mnist import DEFAULT_DIR, FILES
from leanconv.data.load import load_dataset
from leanconv.deploy import fold
from leanconv.runtimes import RUNTIMES, get_runtime, load_artifact
from leanconv.runtimes.onnx_graph import layer_nodes
from leanconv.runtimes.timing import runtime_side_by_side

SHAPE = (2, 1, 28, 28)
PAIRS = [(runtime.name, precision) for runtime in RUNTIMES.values()
         for precision in runtime.precisions]


def tiny(seed: int = 0) -> nn.Module:
    """Two convs with BatchNorm (with running statistics to fold) and a linear head."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    for norm in (model[1], model[4]):
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def needs(runtime: str, precision: str | None = None) -> None:
    """Skip when ``runtime`` (in ``precision``) does not run on this machine."""
    entry = RUNTIMES.get(runtime)
    why = entry.missing() or (precision and entry.unsupported(precision))
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(96, *SHAPE[1:])


@pytest.mark.parametrize(("runtime", "precision"), PAIRS, ids=[" ".join(p) for p in PAIRS])
def test_every_runtime_and_precision_follows_pytorch(runtime, precision, model, images):
    needs(runtime, precision)
    calibration, inputs = images[:64], images[64:]
    artifact = RUNTIMES.get(runtime).build(model, SHAPE, precision, threads=1,
                                           calibration=calibration)
    assert artifact.name == f"{runtime} {precision}" and artifact.input_shape == SHAPE
    with torch.no_grad():
        expected = model(inputs)
    got = artifact(inputs)  # another batch than the built one: 32
    assert got.dtype == torch.float32 and got.shape == expected.shape
    error = (got - expected).abs().max().item()
    resolved = str(getattr(artifact, "inference_precision", "f32"))
    if precision == "fp32" or (precision == "default" and "32" in resolved):
        assert error < 1e-4, error
    else:  # bf16 keeps about 3 significant digits, int8 about 2
        assert error < 0.1 * expected.abs().max().item(), error
        agreement = (got.argmax(1) == expected.argmax(1)).float().mean().item()
        assert agreement >= 0.8, agreement
    artifact.runner(inputs[:2])()  # what the timing harness calls


def _trained_on_fashion_mnist():
    """The tiny model trained briefly (2,000 images, 2 passes; under a second): about 72% on
    the test set."""
    data = load_dataset("fashion-mnist")
    images = data.subset(2000).model_inputs()
    labels = data.train.labels[:2000]
    model = tiny(3).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(2):
        for start in range(0, len(images), 50):
            loss = nn.functional.cross_entropy(model(images[start:start + 50]),
                                               labels[start:start + 50])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), data, images


def test_int8_keeps_the_accuracy_of_a_trained_model():
    if not (DEFAULT_DIR / FILES["test_labels"]).is_file():
        pytest.skip("the Debian package dataset-fashion-mnist is not installed")
    model, data, train_images = _trained_on_fashion_mnist()
    test = data.test.subset(500)
    x = test.take()
    x = (x.float() / 255 - data.mean[0]) / data.std[0]

    def accuracy(run):
        return (run(x).argmax(1) == test.labels).float().mean().item()

    with torch.no_grad():
        reference = accuracy(model)
    assert reference > 0.6, reference  # it learned something
    for runtime in ("onnxruntime", "openvino"):
        if RUNTIMES.get(runtime).missing():
            continue
        artifact = RUNTIMES.get(runtime).build(model, (1, *SHAPE[1:]), "int8", threads=1,
                                               calibration=train_images[:256])
        assert abs(accuracy(artifact) - reference) <= 0.02, runtime


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_artifact_saves_and_loads_with_its_metadata(runtime, model, images, tmp_path):
    needs(runtime)
    artifact = RUNTIMES.get(runtime).build(model, SHAPE, "int8", threads=1,
                                           calibration=images[:32])
    artifact.metadata = {"source": "tiny", "input_size": [28, 28], "num_classes": 10,
                         "data": {"mean": [0.5], "std": [0.25]}}
    suffix = RUNTIMES.get(runtime).suffix
    written = artifact.save(tmp_path / f"model{suffix}")
    assert written[0] == tmp_path / f"model{suffix}" and all(p.is_file() for p in written)
    loaded = load_artifact(tmp_path / f"model{suffix}", threads=1)
    assert (loaded.runtime, loaded.precision) == (runtime, "int8")
    assert loaded.input_shape[1:] == SHAPE[1:] and loaded.metadata == artifact.metadata
    x = images[64:68]
    assert torch.allclose(loaded(x), artifact(x), atol=1e-5)


def test_loading_what_is_not_an_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"is not a runtime artifact; expected a file ending in "
                                         r"\.onnx, \.xml"):
        load_artifact(tmp_path / "model.pt", threads=1)
    with pytest.raises(ValueError, match="does not exist"):
        load_artifact(tmp_path / "model.onnx", threads=1)
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all")
    needs("onnxruntime")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        load_artifact(tmp_path / "bad.onnx", threads=1)


def test_a_missing_runtime_names_the_extra_that_installs_it(monkeypatch):
    onnxruntime = RUNTIMES.get("onnxruntime")
    monkeypatch.setattr(type(onnxruntime), "modules", ("leanconv_no_such_module",))
    with pytest.raises(ValueError, match=r"runtime 'onnxruntime' needs leanconv_no_such_module, "
                                         r"which is not installed: pip install "
                                         r"'leanconv\[onnx\]'"):
        get_runtime("deploy", "onnxruntime", "int8")
    assert onnxruntime.available_precisions() == []
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "nncf" else real(name, *a))
    with pytest.raises(ValueError, match=r"needs nncf.*pip install 'leanconv\[openvino\]'"):
        get_runtime("deploy", "openvino")
    assert get_runtime("deploy", "torch", "fp32").name == "torch"


def test_an_unknown_runtime_or_precision_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"deploy: runtime='tensorrt' is invalid; choose one "
                                         r"of .*'onnxruntime'.*'torch'"):
        get_runtime("deploy", "tensorrt")
    needs("onnxruntime")
    with pytest.raises(ValueError, match=r"precision='bf16' is invalid for runtime "
                                         r"'onnxruntime'; valid: fp32, int8"):
        get_runtime("deploy", "onnxruntime", "bf16")
    with pytest.raises(ValueError, match=r"precision='int4' is invalid for runtime 'torch'; "
                                         r"valid: fp32, bf16"):
        get_runtime("deploy", "torch", "int4")


def test_int8_without_calibration_images_says_so(model):
    needs("onnxruntime")
    with pytest.raises(ValueError, match="int8 needs calibration images"):
        RUNTIMES.get("onnxruntime").build(model, SHAPE, "int8", threads=1)


def _quantized_nodes(data: bytes) -> set[str]:
    """The Conv and Gemm nodes of an ONNX model whose input comes through DequantizeLinear."""
    graph = onnx.load_from_string(data).graph
    producers = {out: node.op_type for node in graph.node for out in node.output}
    return {node.name for node in graph.node if node.op_type in ("Conv", "Gemm")
            and producers.get(node.input[0]) == "DequantizeLinear"}


def test_per_layer_int8_in_onnxruntime_quantizes_only_those_layers(model, images):
    needs("onnxruntime")
    runtime = RUNTIMES.get("onnxruntime")
    whole = runtime.build(model, SHAPE, "int8", threads=1, calibration=images[:32])
    fp32 = runtime.build(model, SHAPE, "fp32", threads=1)
    assert len(_quantized_nodes(whole.data)) == 3 and _quantized_nodes(fp32.data) == set()
    one = runtime.build(model, SHAPE, "int8", threads=1, calibration=images[:32], layers=["3"])
    assert one.layers == ("3",) and one.precision == "int8"
    assert _quantized_nodes(one.data) == set(layer_nodes(fp32.data, ["3"]))
    x = images[64:]
    with torch.no_grad():
        expected = model(x)
    # one layer in int8 stays closer to fp32 than the whole model in int8
    assert (one(x) - expected).abs().max() < (whole(x) - expected).abs().max()
    with pytest.raises(ValueError, match=r"no ONNX node computes \['nothing'\]"):
        runtime.build(model, SHAPE, "int8", threads=1, calibration=images[:32],
                      layers=["nothing"])
    with pytest.raises(ValueError, match="cannot be given to single layers"):
        runtime.build(model, SHAPE, "fp32", threads=1, layers=["3"])


def _openvino_quantized(artifact) -> set[str]:
    """The convolutions and matmuls of an OpenVINO model whose input is fake-quantized."""
    return {op.get_friendly_name() for op in artifact.model.get_ops()
            if op.get_type_name() in ("Convolution", "MatMul")
            and op.input(0).get_source_output().get_node().get_type_name() == "FakeQuantize"}


def test_per_layer_int8_in_openvino_quantizes_only_those_layers(model, images):
    needs("openvino")
    runtime = RUNTIMES.get("openvino")
    whole = runtime.build(model, SHAPE, "int8", threads=1, calibration=images[:32])
    assert {"node_conv2d/WithoutBiases", "node_conv2d_1/WithoutBiases"} <= \
        _openvino_quantized(whole)
    one = runtime.build(model, SHAPE, "int8", threads=1, calibration=images[:32], layers=["3"])
    assert _openvino_quantized(one) == {"node_conv2d_1/WithoutBiases"}


def test_an_artifact_refuses_an_input_it_was_not_built_for(model):
    needs("onnxruntime")
    for artifact in (RUNTIMES.get("torch").build(model, SHAPE, "fp32", threads=1),
                     RUNTIMES.get("onnxruntime").build(model, SHAPE, "fp32", threads=1)):
        message = (rf"{artifact.name}: input of shape \(2, 3, 28, 28\) does not match the "
                   rf"artifact's input \(N, 1, 28, 28\)")
        with pytest.raises(ValueError, match=message):
            artifact(torch.randn(2, 3, 28, 28))
        with pytest.raises(ValueError, match=message):
            artifact.runner(torch.randn(2, 3, 28, 28))
        with pytest.raises(ValueError, match="input of shape list"):
            artifact([1, 2])


def test_runtime_side_by_side_builds_and_times_each_model(model):
    needs("onnxruntime")
    other = tiny(1)
    timed = runtime_side_by_side({"a": model, "b": other}, SHAPE, runtime="onnxruntime",
                                 precision="fp32", threads=1, rounds=2, min_run_time=0.02)
    assert set(timed) == {"a", "b"} and all(ms > 0 for ms, _ in timed.values())
    assert len(timed.samples["a"]) >= 2 and timed.speedup("a", "a") == 1.0
    with pytest.raises(ValueError, match=r"cost: precision='int8' is invalid for runtime "
                                         r"'torch'"):
        runtime_side_by_side({"a": model}, SHAPE, runtime="torch", precision="int8",
                             threads=1, owner="cost")
    assert json.dumps({"a": list(timed["a"])})  # plain floats


def _with_choices() -> nn.Module:
    """A HetConv and a shuffled group conv (its shuffle read by a grouped conv, so that no
    reader absorbs it): layers with more than one exact export form."""
    from leanconv.ops import create_conv

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), create_conv("hetconv:p=4", 8, 16, 3),
                         nn.BatchNorm2d(16), nn.ReLU(),
                         create_conv("group:g=4,shuffle=1", 16, 16, 3), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.Conv2d(16, 16, 1, groups=4),  # keeps the shuffle
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10)).eval()


def test_onnxruntime_exports_each_layer_in_the_form_it_measured_fastest(monkeypatch):
    import leanconv.runtimes.forms as forms

    model = _with_choices()
    monkeypatch.setattr(forms, "_TIMES", {})
    runtime = get_runtime("test", "onnxruntime")
    timer = forms.runtime_form_timer(runtime, "fp32", 1)
    _, report = fold(model, SHAPE, threads=1, timer=timer)
    measured = {key[3][0]: times for key, times in forms._TIMES.items()}
    assert set(measured) == {"FoldedHetConv2d", "GroupConv2d"}
    assert set(measured["FoldedHetConv2d"]) == {"fused", "dense"}
    assert set(measured["GroupConv2d"]) == {"grouped", "dense"}
    assert all(ms > 0 for times in measured.values() for ms in times.values())
    actions = {row.name: row.action for row in report.rows}
    fastest = {name: min(times, key=times.get) for name, times in measured.items()}
    assert actions["1"] == f"foldedhetconv2d: {fastest['FoldedHetConv2d']}"
    assert actions["4"] == f"groupconv2d: {fastest['GroupConv2d']}"
    # the build takes the same (remembered) choice and follows PyTorch
    before = dict(forms._TIMES)
    built = runtime.build(model, SHAPE, "fp32", threads=1)
    assert forms._TIMES == before
    x = torch.randn(SHAPE)
    with torch.no_grad():
        assert (built(x) - model(x)).abs().max() < 1e-4
    nodes = {node.op_type for node in onnx.load_from_string(built.data).graph.node}
    assert ("Transpose" in nodes) == (fastest["GroupConv2d"] == "grouped")  # the shuffle
    fixed = runtime.build(model, SHAPE, "fp32", threads=1, measure_forms=False)
    assert "Transpose" in {node.op_type for node in onnx.load_from_string(fixed.data).graph.node}


def test_a_per_layer_int8_layer_is_measured_in_int8(monkeypatch):
    import leanconv.runtimes.forms as forms

    monkeypatch.setattr(forms, "_TIMES", {})
    model = _with_choices()
    runtime = get_runtime("test", "onnxruntime")
    runtime.build(model, SHAPE, "int8", threads=1, calibration=torch.randn(8, 1, 28, 28),
                  layers=["4"], rest="fp32")
    precisions = {key[3][0]: key[1] for key in forms._TIMES}
    assert precisions == {"FoldedHetConv2d": "fp32", "GroupConv2d": "int8"}


def test_pytorch_bf16_measures_the_forms_in_bf16(monkeypatch):
    import leanconv.runtimes.forms as forms

    needs("torch", "bf16")
    monkeypatch.setattr(forms, "_TIMES", {})
    model = _with_choices()
    built = get_runtime("test", "torch").build(model, SHAPE, "bf16", threads=1)
    assert {(key[0], key[1]) for key in forms._TIMES} == {("torch", "bf16")}
    x = torch.randn(SHAPE)
    with torch.no_grad():
        assert (built(x) - model(x)).abs().max() < 0.1 * model(x).abs().max()
