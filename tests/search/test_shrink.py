import json

import pytest
import torch

from leanconv.loading import load_model
from leanconv.search import Target, TargetUnreachable, shrink
from leanconv.search.deployment import Deployment
from leanconv.search.latency_table import LatencyTable

pytestmark = pytest.mark.usefixtures("quick_timing")  # conftest.py says why

SMALL = {"data": "synthetic", "candidates": ["dwsep"],
         "pointwise_candidates": ["group:g=2,shuffle=1"], "threads": 1, "calib_images": 64,
         "held_out_images": 32, "progress": False, "baselines": False}


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



def _small_table(ms):
    """The small net of the table tests with made-up entries ``ms`` (T = 10 ms, so the rest
    of the network is 2 ms): only the selection logic is under test."""
    from leanconv.search.candidates import search_layers
    from tests.search.test_latency_table import SHAPE, net

    model = net()
    layers = search_layers(model, SHAPE, kxk=("keep", "dwsep", "group:g=2,shuffle=1"),
                           pointwise=("keep", "group:g=2,shuffle=1"))
    macs = {name: dict.fromkeys(row, 1) for name, row in ms.items()}
    return model, layers, LatencyTable({}, ms, macs, total_ms=10.0, total_macs=2)


MS = {"3": {"keep": 4.0, "dwsep": 1.0, "group:g=2,shuffle=1": 2.5},
      "6": {"keep": 4.0, "group:g=2,shuffle=1": 2.5}}
SENSITIVITY = {"3": {"keep": 0.0, "dwsep": 0.1, "group:g=2,shuffle=1": 0.2},
               "6": {"keep": 0.0, "group:g=2,shuffle=1": 0.1}}


def test_a_plan_that_misses_when_measured_is_refitted_and_replaced(monkeypatch):
    from leanconv.deploy.latency import Speedup
    from leanconv.search import correction
    from leanconv.search import selection as module

    model, layers, table = _small_table({k: dict(v) for k, v in MS.items()})
    uniform = {"3": "group:g=2,shuffle=1", "6": "group:g=2,shuffle=1"}
    correction.fit(table, {"uniform group": (uniform, 10 / 7)})  # measured as predicted
    assert table.mixed_ms == pytest.approx(0) and table.correction["dwsep"] == pytest.approx(0)

    def measure(original, converted, shape, deployment, plan):
        # dwsep is the cheapest and least lossy on paper, but no faster in the model
        slow = any(type(m).__name__ == "DepthwiseSeparableConv2d" for m in converted.modules())
        return Speedup(1.0 if slow else 1.5, 10.0, 10.0 if slow else 6.7)

    monkeypatch.setattr(module, "measure_speedup", measure)
    said = []
    _, plan, checks, _ = module.checked_plan(model, layers, table, Target("speedup", 1.4),
                                             SENSITIVITY, (2, 3, 16, 16), Deployment(),
                                             said.append)
    assert plan == uniform
    assert [c["measured_speedup"] for c in checks] == [1.0, 1.5]
    assert table.predict({"3": "dwsep", "6": "keep"}) == pytest.approx(10.0)  # as measured
    assert table.calibration["plan check 1"]["plan"] == {"3": "dwsep", "6": "keep"}
    assert said[0].startswith("plan check 1: predicted 1.43x, measured 1.00x")


def test_uniform_plans_are_chosen_without_the_cost_of_mixing():
    from leanconv.search.selection import select_plan

    _, layers, table = _small_table({k: dict(v) for k, v in MS.items()})
    table.mixed_ms = 2.0
    options = [[(table.cost(layer.name, spec), SENSITIVITY[layer.name][spec])
                for spec in layer.specs] for layer in layers]
    target = Target("speedup", 1.4)  # within 10 / 1.4 = 7.14 ms
    selection = select_plan(table, layers, options, target, target.budget(table))
    chosen = {layer.name: layer.specs[j]
              for layer, j in zip(layers, selection.indices, strict=True)}
    assert chosen == {"3": "group:g=2,shuffle=1", "6": "group:g=2,shuffle=1"}
    assert table.predict(chosen) == pytest.approx(7.0)
    # less lossy and within the budget by their entries alone, but mixed plans
    assert table.predict({"3": "dwsep", "6": "keep"}) == pytest.approx(2 + 1 + 4 + 2)
    assert table.predict({"3": "dwsep", "6": "group:g=2,shuffle=1"}) == pytest.approx(7.5)
    assert selection.loss == pytest.approx(0.3)


def test_a_calibration_plan_measured_at_the_target_is_taken_when_no_prediction_reaches_it(
        monkeypatch):
    from leanconv.deploy.latency import Speedup
    from leanconv.search import selection as module
    slow = {"3": {"keep": 4.0, "dwsep": 3.9, "group:g=2,shuffle=1": 3.9},
            "6": {"keep": 4.0, "group:g=2,shuffle=1": 3.9}}
    model, layers, table = _small_table(slow)  # by its entries nothing gets near 1.4x
    uniform = {"3": "group:g=2,shuffle=1", "6": "group:g=2,shuffle=1"}
    table.calibration = {"uniform group": {"plan": uniform, "measured_speedup": 1.45}}
    target = Target("speedup", 1.4)
    module.check_reachable(table, layers, target)  # no TargetUnreachable: it was measured
    monkeypatch.setattr(module, "measure_speedup", lambda *args: Speedup(1.44, 10.0, 6.9))
    _, plan, checks, _ = module.checked_plan(model, layers, table, target, SENSITIVITY,
                                             (2, 3, 16, 16), Deployment(), lambda _: None)
    assert plan == uniform and [c["measured_speedup"] for c in checks] == [1.44]
    assert checks[0]["from_measurements"] is True
    table.calibration = {}
    with pytest.raises(TargetUnreachable, match="unreachable"):
        module.check_reachable(table, layers, target)
