import pytest

from leanconv.deploy.latency import Speedup
from leanconv.search.correction import calibrate, calibration_plans, fit, refit, uniform_plans
from leanconv.search.deployment import Deployment
from tests.search.test_latency_table import net, table


def test_calibration_plans_are_one_uniform_plan_per_spec_and_seeded_random_ones(tmp_path):
    layers, _ = table(net(), cache_dir=tmp_path)
    uniform = uniform_plans(layers)
    assert uniform == {"dwsep": {"3": "dwsep"}, "hetconv:p=2": {"3": "hetconv:p=2"},
                       "group:g=2,shuffle=1": {"6": "group:g=2,shuffle=1"}}
    plans = calibration_plans(layers, random_plans=4)
    assert list(plans)[:3] == [f"uniform {spec}" for spec in uniform]
    assert [name for name in plans if name.startswith("random")] == [
        f"random {i}" for i in range(4)]
    assert plans == calibration_plans(layers, random_plans=4)  # seeded
    assert all(plans[f"random {i}"][layer.name] in layer.specs
               for i in range(4) for layer in layers)


def test_the_fit_recovers_a_known_in_context_correction(tmp_path, monkeypatch):
    """Speed-ups generated from known c and m (the model of the module docstring): the
    least-squares fit gives them back, and predicts a plan it never saw."""
    layers, result = table(net(), cache_dir=tmp_path)
    truth = {"dwsep": 0.3, "hetconv:p=2": -0.1, "group:g=2,shuffle=1": 0.2}
    mixed_ms = 0.05 * result.total_ms
    truth_table = type(result)(**{**result.__dict__, "correction": truth,
                                  "mixed_ms": mixed_ms})
    plans = calibration_plans(layers, random_plans=8)

    def fake_speedups(self, reference, models, input_shape, **kwargs):
        return {name: Speedup(result.total_ms / truth_table.predict(plans[name]), 1.0, 1.0)
                for name in models}

    monkeypatch.setattr(Deployment, "speedups", fake_speedups)
    calibrate(result, net(), layers, (2, 3, 16, 16), threads=1, random_plans=8)
    assert result.correction == pytest.approx(truth, abs=1e-9)
    assert result.mixed_ms == pytest.approx(mixed_ms, rel=1e-9)
    unseen = {"3": "dwsep", "6": "keep"}
    assert result.predict(unseen) == pytest.approx(truth_table.predict(unseen))
    for name in plans:
        row = result.calibration[name]
        assert row["fitted_speedup"] == pytest.approx(row["measured_speedup"])


def test_calibration_on_measured_plans_fits_no_worse_than_the_raw_table(tmp_path):
    layers, result = table(net(), cache_dir=tmp_path)
    raw_total = result.total_ms
    calibrate(result, net(), layers, (2, 3, 16, 16), threads=1, random_plans=3)
    assert result.total_ms == raw_total and set(result.correction) == {
        "dwsep", "hetconv:p=2", "group:g=2,shuffle=1"}

    def squared(kind):
        return sum((1 / row[kind] - 1 / row["measured_speedup"]) ** 2 * row[
            "measured_speedup"] ** 2 for row in result.calibration.values())

    assert squared("fitted_speedup") <= squared("raw_speedup") + 1e-12
    assert "calibrated in context on 6 measured plans" in result.describe()


def test_a_refit_adds_the_measured_plan_and_moves_its_prediction_to_the_measurement(
        tmp_path):
    _, result = table(net(), cache_dir=tmp_path)
    fit(result, {"uniform dwsep": ({"3": "dwsep"}, 1.0),
                 "uniform group": ({"6": "group:g=2,shuffle=1"}, 1.0)})
    plan = {"3": "dwsep", "6": "group:g=2,shuffle=1"}
    before = result.total_ms / result.predict(plan)
    refit(result, "plan check 1", plan, 0.5)
    assert set(result.calibration) == {"uniform dwsep", "uniform group", "plan check 1"}
    assert result.calibration["plan check 1"]["plan"] == plan
    after = result.total_ms / result.predict(plan)
    assert abs(after - 0.5) < abs(before - 0.5)
    assert after == pytest.approx(0.5)  # three plans, four unknowns: each fits


@pytest.mark.parametrize("plans, message", [
    ({}, "non-empty"),
    ({"p": ({"3": "dwsep"}, 0.0)}, "measured speed-up > 0"),
    ({"p": ({"3": "dwsep"}, float("nan"))}, "measured speed-up > 0"),
    ({"p": ({"nope": "dwsep"}, 1.2)}, "layers the table does not have: \\['nope'\\]"),
    ({"p": ({"3": "hetconv:p=8"}, 1.2)}, "specs the table did not measure"),
])
def test_fit_refuses_bad_plans_by_name(tmp_path, plans, message):
    _, result = table(net(), cache_dir=tmp_path)
    with pytest.raises(ValueError, match=message):
        fit(result, plans)
