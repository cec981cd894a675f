"""``leanconv eval`` of a runtime artifact (model.onnx, model.xml): the model info it records
gives its data and normalisation; without it, --data and the artifact's own input; clear
errors for images of another shape and for data without the model's labels."""

import dataclasses

import pytest
import torch
from torch import nn

from leanconv.cli import main
from leanconv.data.load import dataset_for_model
from leanconv.loading import ModelInfo
from leanconv.runtimes import RUNTIMES
from leanconv.train.distributed import DistContext
from leanconv.train.evaluate import evaluate, evaluate_artifact, evaluate_checkpoint

SHAPE = (1, 1, 28, 28)


def tiny(classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, classes)).eval()


def info_of(classes: int = 10) -> ModelInfo:
    """What shrink records: a checkpoint trained on synthetic data, with its normalisation."""
    return ModelInfo(source="runs/tiny/best.pt", kind="checkpoint", model="tiny", in_chans=1,
                     input_size=(28, 28), num_classes=classes,
                     train_config={"data": "synthetic"},
                     data={"mean": [0.4], "std": [0.3]})


def save(model, runtime, path, precision="fp32", info=None, calibration=None):
    needs = RUNTIMES.get(runtime).missing()
    if needs:
        pytest.skip(needs)
    artifact = RUNTIMES.get(runtime).build(model, SHAPE, precision, threads=1,
                                           calibration=calibration)
    if info is not None:
        artifact.metadata = dataclasses.asdict(info)
    artifact.save(path)
    return path


def test_an_onnx_artifact_is_evaluated_on_the_data_it_records(tmp_path, capsys):
    model, info = tiny(), info_of()
    path = save(model, "onnxruntime", tmp_path / "model.onnx", info=info)
    result = evaluate_checkpoint(str(path), batch_size=100)  # dispatches on the suffix
    dataset = dataset_for_model(info, None)
    expected = evaluate(model, dataset.test, dataset, 100, DistContext())
    assert dataset.mean == (0.4,)  # the recorded normalisation, not the data's own
    assert (result["runtime"], result["precision"], result["data"]) == (
        "onnxruntime", "fp32", "synthetic")
    assert result["images"] == 512 and result["acc"] == pytest.approx(expected["acc"])
    assert result["loss"] == pytest.approx(expected["loss"], rel=1e-4)
    assert set(result["per_class"]) == {f"class{i}" for i in range(10)}
    assert main(["eval", "--checkpoint", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path} (onnxruntime fp32): test accuracy {expected['acc']:.4f}")


def test_an_openvino_int8_artifact_follows_the_pytorch_model(tmp_path):
    model, info = tiny(), info_of()
    dataset = dataset_for_model(info, None)
    path = save(model, "openvino", tmp_path / "model.xml", "int8", info,
                calibration=dataset.model_inputs(64))
    assert (tmp_path / "model.bin").is_file()
    result = evaluate_artifact(str(path), threads=1)
    expected = evaluate(model, dataset.test, dataset, 1000, DistContext())
    assert (result["runtime"], result["precision"]) == ("openvino", "int8")
    assert abs(result["acc"] - expected["acc"]) <= 0.05


def test_an_artifact_without_model_info_needs_data(tmp_path):
    path = save(tiny(), "onnxruntime", tmp_path / "model.onnx")
    with pytest.raises(ValueError, match=r"records no model info \(it was not written by "
                                         r"leanconv\), so the data it was trained on is "
                                         r"unknown; give --data"):
        evaluate_artifact(str(path))
    result = evaluate_artifact(str(path), "synthetic", batch_size=256)
    assert result["images"] == 512 and result["data"] == "synthetic"


def test_images_of_another_shape_name_both_shapes_and_the_fix(tmp_path, capsys):
    path = save(tiny(), "onnxruntime", tmp_path / "model.onnx", info=info_of())
    with pytest.raises(ValueError, match=r"takes images of \(C, H, W\) = \(1, 28, 28\); "
                                         r"data='synthetic' gives \(1, 32, 32\) \(with "
                                         r"--image-size 32\): give --image-size 28 --in-chans 1 "
                                         r"\(or leave them out\), or rebuild the artifact with "
                                         r"--input 1x32x32"):
        evaluate_artifact(str(path), image_size=32)
    assert main(["eval", "--checkpoint", str(path), "--in-chans", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leanconv eval: error: ") and "gives (3, 28, 28) (with --in-chans 3)" \
        in err


def test_data_without_the_model_labels_is_refused(tmp_path):
    path = save(tiny(4), "onnxruntime", tmp_path / "model.onnx", info=info_of(4))
    with pytest.raises(ValueError, match=r"has 4 outputs; data='synthetic' has 10 classes .*: "
                                         r"accuracy needs images labelled with the model's "
                                         r"classes, and a runtime artifact has no original"):
        evaluate_artifact(str(path))


def test_metadata_that_is_not_a_model_info_is_a_clear_error(tmp_path):
    needs = RUNTIMES.get("onnxruntime").missing()
    if needs:
        pytest.skip(needs)
    artifact = RUNTIMES.get("onnxruntime").build(tiny(), SHAPE, "fp32", threads=1)
    artifact.metadata = {"classes": 10}
    artifact.save(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="records metadata that is not a leanconv model info"):
        evaluate_artifact(str(tmp_path / "model.onnx"), "synthetic")
    with pytest.raises(ValueError, match="batch_size=0 is invalid"):
        evaluate_artifact(str(tmp_path / "model.onnx"), batch_size=0)
    with pytest.raises(ValueError, match="does not exist"):
        evaluate_checkpoint(str(tmp_path / "other.xml"))
