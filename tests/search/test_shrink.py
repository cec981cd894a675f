import json

import pytest
import torch

from leanconv.loading import load_model
from leanconv.search import Target, TargetUnreachable, shrink
from leanconv.search.latency_table import LatencyTable

SMALL = {"data": "synthetic", "candidates": ["dwsep"],
         "pointwise_candidates": ["group:g=2,shuffle=1"], "threads": 1, "calib_images": 64,
         "held_out_images": 32, "progress": False}


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one target"),
    ({"speedup": 1.5, "macs_ratio": 0.5}, "exactly one target"),
    ({"speedup": 1.0}, "speedup=1.0 asks for no speed-up"),
    ({"speedup": 0.5}, "expected a number > 1"),
    ({"speedup": float("nan")}, "expected a number"),
    ({"latency_ms": 0}, "latency_ms=0"),
    ({"macs_ratio": 1.0}, "between 0 and 1"),
    ({"macs_ratio": "half"}, "expected a number"),
])
def test_bad_targets_are_refused_before_anything_runs(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match="shrink") as error:
        shrink("resnet20_cifar", out=str(tmp_path / "out"), **kwargs)
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"candidates": ["hetconv:q=4"]}, "candidates"),
    ({"pointwise_candidates": ["not-an-op"]}, "pointwise_candidates"),
    ({"batch": 0}, "batch=0"),
    ({"threads": 0}, "threads=0"),
    ({"epochs": -1}, "epochs=-1"),
    ({"input_size": (3, 32)}, "input_size"),
])
def test_bad_arguments_name_themselves(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        shrink("resnet20_cifar", out=str(tmp_path), speedup=1.5, **kwargs)


def test_an_unknown_model_gets_close_matches(tmp_path):
    with pytest.raises(ValueError, match="resnet20_cifar"):
        shrink("resnet20_cifr", out=str(tmp_path), speedup=1.5)


def test_target_budgets():
    table = LatencyTable({}, {}, {}, total_ms=10.0, total_macs=1000)
    assert Target.from_args(2, None, None).budget(table) == 5.0
    assert Target.from_args(None, 4, None).budget(table) == 4.0
    assert Target.from_args(None, None, 0.25).budget(table) == 250


def test_an_unreachable_target_says_what_is_reachable_and_trains_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(TargetUnreachable) as error:
        shrink("resnet20_cifar", out=str(out), speedup=50, **SMALL)
    message = str(error.value)
    assert "speedup=50 is unreachable" in message and "is reachable" in message
    assert "Nothing was trained" in message
    assert not out.exists()
    with pytest.raises(TargetUnreachable, match="macs_ratio >= 0"):
        shrink("resnet20_cifar", out=str(out), macs_ratio=0.01, **SMALL)


@pytest.mark.slow
def test_shrink_writes_a_plan_a_loadable_model_and_a_report(tmp_path):
    out = tmp_path / "shrunk"
    result = shrink("resnet20_cifar", out=str(out), macs_ratio=0.7, epochs=1, **SMALL)
    assert result.macs["shrunk"] <= 0.7 * result.macs["original"]
    assert set(result.plan.values()) <= {"keep", "dwsep", "group:g=2,shuffle=1"}
    assert any(spec != "keep" for spec in result.plan.values())
    assert {p.name for p in out.iterdir()} >= {"plan.json", "model.pt", "report.md",
                                                "report.json", "pareto.png", "converted.pt"}
    assert json.loads((out / "plan.json").read_text()) == result.plan
    model, info = load_model(str(out / "model.pt"))
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert {k: v for k, v in info.plan.items()} == {
        k: v for k, v in result.plan.items() if v != "keep"}
    report = json.loads((out / "report.json").read_text())
    assert report["plan"] == result.plan and report["speedup"] == result.speedup
    assert report["accuracy"]["fine_tuned"] is not None
    assert len(report["layers"]) == len(result.plan)
    assert result.selection["lower_bound"] <= result.selection["loss"] + 1e-12
    text = (out / "report.md").read_text()
    assert "| layer | old | new |" in text and "speed-up (measured)" in text
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    again = shrink("resnet20_cifar", out=str(tmp_path / "again"), macs_ratio=0.7, epochs=0,
                   **SMALL)
    assert again.table["measured"] == 0 and again.table["reused"] == result.table["entries"]
    assert again.accuracy["fine_tuned"] is None
