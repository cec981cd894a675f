"""Label-free where labels are not needed (issue 27): unlabeled images (``images:DIR``),
synthetic images at the model's size, calibration, distillation-only training and shrink on
images whose labels are not the model's classes, with agreement reported instead of
accuracy."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from leanconv import convert, load_model
from leanconv.cli import main
from leanconv.converter import save_converted
from leanconv.data.load import dataset_for_model, labels_apply, load_dataset, parse_data_spec
from leanconv.train import TrainConfig, train
from leanconv.train.distributed import DistContext
from leanconv.train.evaluate import evaluate_agreement
from tests.helpers import hand_made_checkpoint

pytestmark = pytest.mark.usefixtures("quick_timing")  # conftest.py says why


def _images(folder, count=24, size=(30, 36)):
    """``count`` random RGB PNGs, half in ``folder``, half two folders down."""
    rng = np.random.default_rng(0)
    for i in range(count):
        sub = folder if i % 2 else folder / "a" / "b"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(sub / f"{i}.png")
    return folder


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def test_images_dir_is_every_image_under_it_without_labels(tmp_path):
    folder = _images(tmp_path / "photos")
    (folder / "notes.txt").write_text("not an image")
    data = load_dataset(f"images:{folder}", image_size=16, val_split=0.25)
    assert not data.labeled and data.classes == () and data.num_classes == 0
    assert len(data.train) + len(data.test) == 24 and len(data.test) == 6
    assert data.image_shape == (3, 16, 16) and data.spec == f"images:{folder}"
    assert data.model_inputs(4).shape == (4, 3, 16, 16)
    assert parse_data_spec(f"images:{folder}") == ("images", str(folder))
    with pytest.raises(ValueError, match=r"data='images:' is invalid; valid: .*images:DIR"):
        parse_data_spec("images:")
    with pytest.raises(ValueError, match=r"is a file, not a folder; expected a folder with "
                                         r"images in it or below it"):
        load_dataset(f"images:{folder / '1.png'}")
    (tmp_path / "one").mkdir()
    _images(tmp_path / "one", count=2)
    (tmp_path / "one" / "a" / "b" / "0.png").unlink()
    with pytest.raises(ValueError, match=r"has 1 image; images:DIR needs at least 2"):
        load_dataset(f"images:{tmp_path / 'one'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"image folder .*empty' has no images \(it is empty\)"):
        load_dataset(f"images:{tmp_path / 'empty'}")


def test_synthetic_images_are_made_at_the_size_asked():
    data = load_dataset("synthetic", image_size=40, in_chans=3)
    assert data.image_shape == (3, 40, 40) and data.num_classes == 10


def test_labels_are_checked_only_where_accuracy_needs_them(tmp_path):
    _, info = load_model("torchvision:resnet18")
    folder = _images(tmp_path / "photos")
    unlabeled = dataset_for_model(info, f"images:{folder}", need_labels=False)
    assert unlabeled.image_shape == (3, 224, 224)
    assert labels_apply(info, unlabeled) == f"data='images:{folder}' has no labels"
    synthetic = dataset_for_model(info, "synthetic", need_labels=False, image_size=32)
    assert "has 1000 outputs; data='synthetic' has 10 classes" in labels_apply(info, synthetic)
    with pytest.raises(ValueError, match=r"has 1000 outputs.*accuracy needs images labelled"):
        dataset_for_model(info, "synthetic", image_size=32)


def test_agreement_of_a_model_with_itself_and_with_another():
    data = load_dataset("synthetic", image_size=16)
    model, _ = load_model("resnet20_cifar", num_classes=10, in_chans=1)
    other, _ = load_model("resnet20_cifar", num_classes=10, in_chans=1)
    same = evaluate_agreement(model, model, data.test, data, 256, DistContext())
    assert same["agreement"] == 1.0 and abs(same["kl"]) < 1e-6 and same["images"] == 512
    apart = evaluate_agreement(model, other, data.test, data, 256, DistContext())
    assert apart["kl"] > 0 and apart["agreement"] <= 1.0


def test_distillation_alone_trains_on_unlabeled_images(tmp_path):
    teacher = tmp_path / "teacher.pt"
    hand_made_checkpoint(teacher, model="resnet20_cifar", image_size=16, in_chans=3)
    folder = _images(tmp_path / "photos", count=40)
    common = {"teacher": str(teacher), "data": f"images:{folder}", "image_size": 16,
              "in_chans": 3, "epochs": 1, "batch_size": 8, "progress": False}
    summary = train(TrainConfig(**common, distill_weight=1.0, out=str(tmp_path / "run")))
    assert summary["test_acc"] is None and 0 <= summary["test_agreement"] <= 1
    assert summary["no_accuracy"] == f"data='images:{folder}' has no labels"
    with open(tmp_path / "run" / "metrics.csv") as file:
        assert "test_agreement" in next(csv.reader(file))
    _, info = load_model(str(tmp_path / "run" / "best.pt"))
    assert info.num_classes == 10  # the teacher's outputs, not adapted to the data
    with pytest.raises(ValueError, match=r"has no labels; learn from a teacher's outputs"):
        TrainConfig(**common)
    with pytest.raises(ValueError, match=r"has no labels; learn from a teacher's outputs"):
        TrainConfig(data=f"images:{folder}")
    seven, info = load_model("resnet20_cifar", num_classes=7, in_chans=3)
    converted, report = convert(seven, "dwsep")
    save_converted(str(tmp_path / "seven.pt"), converted, info, report)
    with pytest.raises(ValueError, match=r"has 7 classes and the labels do not fit it"):
        train(TrainConfig(**{**common, "data": "synthetic", "teacher": str(tmp_path / "seven.pt"),
                             "distill_weight": 0.5}))


def test_cli_convert_calibrates_a_1000_class_model_on_unlabeled_images(tmp_path, capsys):
    folder = _images(tmp_path / "photos")
    out = tmp_path / "r18.pt"
    assert main(["convert", "torchvision:resnet18", "--to", "hetconv:p=4", "--input",
                 "3x32x32", "--calibrate", f"images:{folder}", "--calib-images", "16",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "weights fitted on 16 calibration images" in text
    assert load_model(str(out))[1].num_classes == 1000


def test_cli_eval_gives_agreement_with_the_original_or_says_why_not(tmp_path, capsys):
    model, converted = tmp_path / "m.pt", tmp_path / "c.pt"
    hand_made_checkpoint(model, model="resnet20_cifar")
    folder = _images(tmp_path / "photos")
    assert main(["eval", "--checkpoint", str(model), "--data", f"images:{folder}"]) == 2
    assert capsys.readouterr().err == (
        f"leanconv eval: error: eval: data='images:{folder}' has no labels: accuracy needs "
        f"images labelled with the model's classes, and agreement needs the original: it is "
        f"a training checkpoint trained without a teacher\n")
    assert main(["convert", str(model), "--to", "dwsep", "--out", str(converted)]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(converted), "--data", f"images:{folder}"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{converted}: no accuracy: data='images:{folder}' has no labels; "
                           f"against the model it was made from, {model}: top-1 "
                           f"agreement ")
    model.unlink()
    assert main(["eval", "--checkpoint", str(converted), "--data", f"images:{folder}"]) == 2
    assert f"the file it was converted from, '{model}', is gone" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_shrink_on_data_whose_classes_are_not_the_models(tmp_path, capsys):
    """The issue's command shape: a model built from a name with its own classes
    (--num-classes 7), data with other classes (synthetic: 10); shrink distils and reports
    agreement, where it used to stop with 'has N outputs; data has 10 classes'."""
    out = tmp_path / "out"
    assert main(["shrink", "resnet20_cifar", "--num-classes", "7", "--in-chans", "1",
                 "--data", "synthetic", "--input", "1x28x28", "--macs-ratio", "0.8",
                 "--epochs", "1", "--batch-size", "64", "--candidates", "dwsep",
                 "--pointwise-candidates", "group:g=2,shuffle=1", "--threads", "1",
                 "--calib-images", "64", "--held-out-images", "32", "--quiet",
                 "--no-baselines", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1 agreement with the original (test split)" in text
    assert "No accuracy: 'resnet20_cifar' has 7 outputs; data='synthetic' has 10" in text
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"] == {"original": None, "calibrated": None, "fine_tuned": None}
    for stage in ("calibrated", "fine_tuned"):
        assert 0 <= report["agreement"][stage]["agreement"] <= 1
    shrunk, info = load_model(str(out / "model.pt"))
    assert info.num_classes == 7
    assert shrunk(torch.randn(2, 1, 28, 28)).shape == (2, 7)
    assert main(["eval", "--checkpoint", str(out / "model.pt")]) == 0  # its own data
    assert (f"against the model it was made from, {out / 'original.pt'}: top-1 agreement"
            in capsys.readouterr().out)


@pytest.mark.slow
def test_cli_shrink_runs_the_issues_command(tmp_path, capsys):
    """Issue 27's defect 1, its command: `leanconv shrink torchvision:mobilenet_v3_small --data
    synthetic --input 3x64x64 --macs-ratio 0.6 --epochs 0 --out D` stopped with "has 1000
    outputs; data='synthetic' has 10 classes"; it now shrinks and reports agreement."""
    out = tmp_path / "D"
    assert main(["shrink", "torchvision:mobilenet_v3_small", "--data", "synthetic", "--input",
                 "3x64x64", "--macs-ratio", "0.6", "--epochs", "0", "--threads", "1",
                 "--quiet", "--no-baselines", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert ("No accuracy: 'torchvision:mobilenet_v3_small' has 1000 outputs; data='synthetic' "
            "has 10 classes") in text
    report = json.loads((out / "report.json").read_text())
    assert report["macs"]["shrunk"] <= 0.6 * report["macs"]["original"]
    assert 0 <= report["agreement"]["calibrated"]["agreement"] <= 1
