import csv
import json

import pytest
import torch

from leanconv.checkpoint import load_checkpoint
from leanconv.cli import main
from leanconv.train import TrainConfig, train
from leanconv.train.evaluate import evaluate_checkpoint
from leanconv.train.trainer import METRIC_COLUMNS

TINY = {"data": "synthetic", "subset": 256, "batch_size": 32, "eval_batch_size": 256,
        "progress": False, "threads": 1}


class Interrupted(Exception):
    pass


def test_tiny_run_writes_everything(tmp_path):
    summary = train(TrainConfig(epochs=2, out=str(tmp_path), conv="hetconv:p=2", **TINY))
    for key in ("test_acc", "test_loss", "epochs", "seconds", "images_per_s", "params",
                "macs_analytic"):
        assert key in summary
    assert summary["epochs"] == 2 and 0 <= summary["test_acc"] <= 1
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "metrics.csv",
                                                    "summary.json", "last.pt", "best.pt"}
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert tuple(rows[0]) == METRIC_COLUMNS and len(rows) == 2
    assert json.loads((tmp_path / "config.json").read_text())["conv"] == "hetconv:p=2"
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and "optimizer" in state
    assert state["built"] == {"model": "resnet20_cifar", "input_size": [28, 28], "kwargs": {
        "num_classes": 10, "in_chans": 1, "conv": "hetconv:p=2"}, "adapt": {}, "plan": {},
        "conv": "hetconv:p=2"}
    assert state["data"]["spec"] == "synthetic" and len(state["data"]["mean"]) == 1
    assert summary["teacher_test_acc"] is None and summary["adapted"] == []


@pytest.mark.slow
def test_resumed_run_ends_with_the_same_weights(tmp_path):
    config = {"epochs": 3, "deterministic": True, "ema": True, **TINY}
    train(TrainConfig(out=str(tmp_path / "a"), **config))

    def stop_after_first(epoch, row):
        if epoch == 1:
            raise Interrupted  # as if killed right after the epoch-1 checkpoint

    with pytest.raises(Interrupted):
        train(TrainConfig(out=str(tmp_path / "b"), **config), on_epoch_end=stop_after_first)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    train(TrainConfig(out=str(tmp_path / "b"), resume=True, **config))
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [r["test_acc"] for r in a["metrics"]] == [r["test_acc"] for r in b["metrics"]]


def test_bad_checkpoints_and_resume(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt or not a torch file"):
        train(TrainConfig(out=str(tmp_path), resume=True, **TINY))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="not a leanconv training checkpoint"):
        train(TrainConfig(out=str(tmp_path), resume=True, **TINY))
    with pytest.raises(ValueError, match=r"needs .*last\.pt"):
        train(TrainConfig(out=str(tmp_path / "none"), resume=True, **TINY))


def test_a_batch_larger_than_the_training_set_is_refused(tmp_path):
    # 256 images in batches of 512 would train nothing and still write a "trained" model
    with pytest.raises(ValueError, match=r"batch_size=512 is larger than the 256 training "
                                         r"images.*--batch-size <= 256"):
        train(TrainConfig(out=str(tmp_path), **{**TINY, "batch_size": 512}))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs,message", [
    ({"model": "resnet21_cifar"}, "close matches"),
    ({"conv": "hetconv:q=2"}, "invalid conv spec"),
    ({"epochs": 0}, "epochs=0"),
    ({"lr": -1.0}, "lr=-1.0"),
    ({"data": "mnist"}, "data='mnist'"),
    ({"ema_decay": 1.0}, "ema_decay=1.0"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_cli_train_and_eval(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "synthetic", "--subset", "128", "--epochs", "1",
                 "--batch-size", "32", "--out", str(out), "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test_acc"] == json.loads((out / "summary.json").read_text())["test_acc"]
    result = evaluate_checkpoint(str(out / "best.pt"))
    assert result["images"] == 512 and len(result["per_class"]) == 10
    assert main(["eval", "--checkpoint", str(out / "best.pt")]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and "class9" in text and "512 images of synthetic" in text
    assert main(["eval", "--checkpoint", str(tmp_path / "nothing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # a trained model converted to HetConv (weights inherited) evaluates too
    converted = tmp_path / "het.pt"
    assert main(["convert", str(out / "best.pt"), "--to", "hetconv:p=2", "--out",
                 str(converted)]) == 0
    assert "replaced" in capsys.readouterr().out
    result = evaluate_checkpoint(str(converted))
    assert result["images"] == 512 and 0 <= result["acc"] <= 1


def test_time_limit_and_amp(tmp_path):
    summary = train(TrainConfig(epochs=3, max_minutes=1e-4, amp=True, out=str(tmp_path),
                                **TINY))
    assert summary["stopped_by_time_limit"] and summary["epochs"] == 1
    assert (tmp_path / "last.pt").is_file()
