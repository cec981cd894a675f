"""The free baselines: the unchanged model in each runtime x precision, timed in one
side-by-side measurement, with accuracy and agreement on the test split; what is skipped and
why; the fastest within an accuracy drop."""

import json

import pytest
import torch
from torch import nn

from leanconv.bench import Baseline, Baselines, free_baselines
from leanconv.data.synthetic import synthetic_dataset
from leanconv.runtimes import RUNTIMES
from leanconv.runtimes.onnxruntime_cpu import OnnxruntimeRuntime

SHAPE = (2, 1, 28, 28)
FAST = {"rounds": 2, "min_run_time": 0.02}


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))


def needs_onnxruntime():
    if RUNTIMES.get("onnxruntime").missing():
        pytest.skip(RUNTIMES.get("onnxruntime").missing())


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(train=128, test=200)


def test_free_baselines_of_torch_and_onnxruntime(data):
    needs_onnxruntime()
    model = tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lines = []
    free = free_baselines(model, SHAPE, threads=1, calibration=data.model_inputs(64),
                          dataset=data, runtimes=["onnxruntime"], progress=lines.append,
                          **FAST)
    assert model.training and all(torch.equal(before[k], v)
                                  for k, v in model.state_dict().items())  # not changed
    # torch fp32, the reference, is measured although only onnxruntime was asked for
    assert [row.name for row in free.rows] == ["torch fp32", "onnxruntime fp32",
                                               "onnxruntime int8"]
    assert free.skipped == {}
    reference = free.row("torch", "fp32")
    assert reference.speedup == 1.0 and reference.speedup_in_runtime == 1.0
    assert reference.agreement == 1.0 and 0 <= reference.accuracy <= 1
    ort = free.row("onnxruntime", "fp32")
    assert ort.speedup_in_runtime == 1.0 and ort.speedup > 0 and ort.ms > 0
    assert ort.accuracy == reference.accuracy and ort.agreement == 1.0  # fp32: same classes
    int8 = free.row("onnxruntime", "int8")
    assert int8.agreement >= 0.8 and abs(int8.accuracy - reference.accuracy) <= 0.1
    assert free.input_shape == SHAPE and free.threads == 1
    assert any(line.startswith("baselines: built onnxruntime int8") for line in lines)
    assert any("timing" in line for line in lines)
    record = json.loads(json.dumps(free.to_json()))
    assert record["reference"] == "torch fp32" and record["input_shape"] == list(SHAPE)
    assert [r["precision"] for r in record["rows"]] == [row.precision for row in free.rows]


def test_without_calibration_or_labels_int8_is_skipped_and_only_agreement_counts():
    needs_onnxruntime()
    other_classes = synthetic_dataset(train=64, test=100, num_classes=4)
    free = free_baselines(tiny(), SHAPE, threads=1, calibration=None, dataset=other_classes,
                          runtimes=["onnxruntime"], **FAST)
    assert free.skipped["onnxruntime int8"] == "int8 needs calibration images; none were given"
    assert all(row.accuracy is None and row.agreement is not None for row in free.rows)
    assert free.judged_by() == ("agreement", 1.0)
    assert free.best(max_drop=0.0).agreement == 1.0


def test_a_build_that_fails_or_a_runtime_not_installed_is_skipped_with_why(monkeypatch, data):
    needs_onnxruntime()
    real = OnnxruntimeRuntime.build

    def failing(self, model, shape, precision, **kwargs):
        if precision == "int8":
            raise RuntimeError("quantizer exploded\nwith a long traceback")
        return real(self, model, shape, precision, **kwargs)

    monkeypatch.setattr(OnnxruntimeRuntime, "build", failing)
    monkeypatch.setattr(type(RUNTIMES.get("openvino")), "modules", ("leanconv_missing",))
    free = free_baselines(tiny(), SHAPE, threads=1, calibration=data.model_inputs(8),
                          dataset=None, **FAST)
    assert free.skipped["onnxruntime int8"] == "build failed: RuntimeError: quantizer exploded"
    assert {name for name in free.skipped if name.startswith("openvino")} == {
        "openvino default", "openvino fp32", "openvino int8"}
    assert "pip install 'leanconv[openvino]'" in free.skipped["openvino int8"]
    assert all(row.accuracy is None and row.agreement is None for row in free.rows)
    assert "- not measured: onnxruntime int8: build failed" in free.markdown()
    with pytest.raises(ValueError, match="free_baselines: runtime 'openvino' needs "
                                         "leanconv_missing"):
        free_baselines(tiny(), SHAPE, threads=1, calibration=None, runtimes=["openvino"],
                       **FAST)
    with pytest.raises(ValueError, match=r"max_drop=0\.01 needs the test accuracy or the "
                                         r"agreement"):
        free.best(max_drop=0.01)


def _row(runtime, precision, speedup, accuracy, agreement=1.0):
    return Baseline(runtime, precision, ms=10 / speedup, iqr_ms=0.1, speedup=speedup,
                    speedup_in_runtime=1.0, accuracy=accuracy, agreement=agreement,
                    detail="bf16" if precision == "default" else "")


HAND_MADE = Baselines(
    rows=[_row("torch", "fp32", 1.0, 0.900), _row("onnxruntime", "fp32", 1.5, 0.900),
          _row("onnxruntime", "int8", 3.0, 0.880, 0.95),
          _row("openvino", "default", 2.5, 0.898, 0.99)],
    input_shape=SHAPE, threads=2, skipped={"openvino int8": "build failed: X"})


def test_best_is_the_fastest_within_the_drop():
    assert HAND_MADE.best().name == "onnxruntime int8"
    assert HAND_MADE.best(max_drop=0.003).name == "openvino default"
    assert HAND_MADE.best(max_drop=0.0).name == "onnxruntime fp32"
    assert HAND_MADE.best("onnxruntime", max_drop=0.003).name == "onnxruntime fp32"
    assert HAND_MADE.best("torch").name == "torch fp32"
    assert [row.precision for row in HAND_MADE.rows_of("onnxruntime")] == ["fp32", "int8"]
    assert HAND_MADE.rows_of("openvino")[0].precision == "default"
    assert HAND_MADE.row("openvino", "default").detail == "bf16"
    with pytest.raises(ValueError, match=r"no baseline 'openvino int8': it was not measured: "
                                         r"build failed: X"):
        HAND_MADE.row("openvino", "int8")
    with pytest.raises(ValueError, match=r"runtime='tensorrt' is invalid"):
        HAND_MADE.best("tensorrt")
    with pytest.raises(ValueError, match=r"max_drop=-1 is invalid"):
        HAND_MADE.best(max_drop=-1)
    lonely = Baselines([_row("torch", "fp32", 1.0, 0.9)], SHAPE, 1,
                       {"openvino default": "not installed"})
    with pytest.raises(ValueError, match=r"runtime='openvino' has no measured baseline "
                                         r"\(openvino default: not installed\)"):
        lonely.best("openvino")


def test_markdown_and_json():
    table = HAND_MADE.markdown().splitlines()
    assert table[0].startswith("| runtime | precision | ms | IQR ms | vs torch fp32 |")
    assert table[2] == "| torch | fp32 | 10.000 | 0.100 | 1.00x | 1.00x | 90.00 | 100.00 | - |"
    assert table[5].endswith("| 2.50x | 1.00x | 89.80 | 99.00 | bf16 |")
    assert table[-1] == "- not measured: openvino int8: build failed: X"
    record = HAND_MADE.to_json()
    assert record["skipped"] == {"openvino int8": "build failed: X"} and record["threads"] == 2
    assert record["rows"][2]["accuracy"] == 0.88


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "resnet"}, "model must be an nn.Module"),
    ({"input_shape": (1, 28, 28)}, r"input_shape=\(1, 28, 28\) is invalid; expected \(N, C"),
    ({"threads": 0}, "threads=0 is invalid"),
    ({"calibration": torch.randn(4, 3, 28, 28)}, r"calibration=\(4, 3, 28, 28\) is invalid; "
                                                 r"expected images \(N, 1, 28, 28\)"),
    ({"dataset": synthetic_dataset(train=8, test=8, image_shape=(1, 32, 32))},
     r"dataset of images \(1, 32, 32\) is invalid"),
    ({"runtimes": "torch"}, "runtimes='torch' is invalid; expected a list"),
    ({"runtimes": ["tvm"]}, "runtimes='tvm' is invalid; choose one of"),
    ({"runtimes": ["torch", "torch"]}, "names a runtime twice"),
    ({"rounds": 0}, "rounds=0 is invalid"),
    ({"min_run_time": 0}, "min_run_time=0 is invalid"),
    ({"progress": "yes"}, "progress='yes' is invalid"),
])
def test_free_baselines_refuses_bad_arguments(kwargs, message):
    arguments = {"model": tiny(), "input_shape": SHAPE, "threads": 1, "calibration": None,
                 **kwargs}
    model, shape = arguments.pop("model"), arguments.pop("input_shape")
    with pytest.raises(ValueError, match=message):
        free_baselines(model, shape, **arguments)


@pytest.mark.slow
def test_free_baselines_in_every_installed_runtime(data):
    free = free_baselines(tiny(), SHAPE, threads=1, calibration=data.model_inputs(64),
                          dataset=data, **FAST)
    measured = {row.name for row in free.rows}
    for runtime in RUNTIMES.values():
        for precision in runtime.precisions:
            name = f"{runtime.name} {precision}"
            assert (name in measured) != (name in free.skipped), name
    if "openvino default" in measured:
        assert free.row("openvino", "default").detail in ("bf16", "f32", "f16")
        assert free.row("openvino", "fp32").detail == "f32"
    assert free.best(max_drop=0.003).speedup >= 1.0 or free.best().name == "torch fp32"
