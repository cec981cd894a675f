import pytest
import torch
from torch import nn

from leanconv.cost.latency import SideBySide, interleaved_samples, measure_side_by_side


def test_a_speedup_is_the_median_of_paired_ratios_not_of_drifting_medians():
    # the machine slowed 3x in round 3, between the reference's block and the model's:
    # the medians say the model is slower, every round but that one says 2x faster
    timed = SideBySide({"reference": [10.0, 10.0, 10.0, 30.0, 30.0],
                        "model": [5.0, 5.0, 15.0, 15.0, 15.0]})
    assert timed["reference"][0] / timed["model"][0] == pytest.approx(10 / 15)
    assert timed.speedup("model", "reference") == pytest.approx(2.0)
    with pytest.raises(KeyError, match="'other' was not measured"):
        timed.speedup("other", "reference")


def test_entries_take_turns_in_equal_rounds():
    x = [torch.randn(1, 4, 8, 8)]
    calls = {"conv": (nn.Conv2d(4, 4, 3, padding=1).eval(), x),
             "identity": (nn.Identity(), x)}
    samples = interleaved_samples(calls, threads=1, seconds=0.01, min_rounds=3)
    assert set(samples) == {"conv", "identity"}
    assert len(samples["conv"]) == len(samples["identity"]) >= 3
    assert all(ms > 0 for values in samples.values() for ms in values)


def test_side_by_side_reports_medians_and_keeps_the_samples():
    models = {"a": nn.Conv2d(3, 8, 3).eval(), "b": nn.Conv2d(3, 8, 1).eval()}
    timed = measure_side_by_side(models, (1, 3, 16, 16), threads=1, rounds=3,
                                 min_run_time=0.005)
    assert set(timed) == {"a", "b"} and all(median > 0 for median, _ in timed.values())
    assert len(timed.samples["a"]) >= 3
    assert timed.speedup("a", "a") == pytest.approx(1.0)
