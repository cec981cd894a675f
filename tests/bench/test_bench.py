"""The benchmark harness computes its columns correctly (timings themselves are not asserted)."""

import json

import pytest

from leanconv.bench import Ceilings, bench_ops
from leanconv.cli import main


def test_roofline_bound_is_the_slower_of_compute_and_memory():
    ceilings = Ceilings(gflops=100.0, gbps=10.0)
    assert ceilings.bound_ms(1e9, 1e6) == pytest.approx(10.0)  # compute-bound: 1 GFLOP
    assert ceilings.bound_ms(1e6, 1e9) == pytest.approx(100.0)  # memory-bound: 1 GB


def test_bench_ops_columns():
    rows = bench_ops(Ceilings(50.0, 10.0), threads=1, batches=(1,), layouts=("nchw",),
                     modes=("inference",), rounds=1, min_run_time=0.01)
    by_case = {row["case"]: row for row in rows}
    het = by_case["hetconv:p=4"]
    # seed eq. 3: 1/p + (1 - 1/p)/K^2 = 1/3 of the dense MACs
    assert het["flops_reduction"] == pytest.approx(3.0, rel=0.01)
    assert het["realization"] == pytest.approx(het["speedup"] / het["flops_reduction"], rel=0.01)
    assert by_case["channel_shuffle:g=4"]["baseline"] == "clone"
    assert "flops_reduction" not in by_case["channel_shuffle:g=4"]  # no MACs on either side
    assert by_case["mixconv:k=3.5.7.9"]["flops_reduction"] < 1  # bigger kernels than dw3x3
    for row in rows:
        assert row["ms"] > 0 and row["bound_ms"] > 0
        assert row["of_bound"] == pytest.approx(row["bound_ms"] / row["ms"], rel=0.01)


def test_bench_cli_writes_json_and_rejects_bad_arguments(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ops.json"
    monkeypatch.setattr("leanconv.bench.roofline.MATMUL_N", 256)
    monkeypatch.setattr("leanconv.bench.roofline.COPY_BYTES", 2**20)
    assert main(["bench", "ops", "--threads", "1", "--batches", "1", "--layouts", "nchw",
                 "--modes", "training", "--rounds", "1", "--out", str(out)]) == 0
    assert "realization" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["machine"]["threads"] == 1 and record["ceilings"]["gflops"] > 0
    assert isinstance(record["machine"]["native_kernels"], bool)
    assert {row["mode"] for row in record["results"]} == {"training"}
    with pytest.raises(SystemExit):
        main(["bench", "ops", "--batches", "0"])
    with pytest.raises(SystemExit):
        main(["bench", "kernels"])


def test_bench_models_rejects_unknown_models():
    from leanconv.bench import bench_models

    with pytest.raises(ValueError, match=r"models=\['resnet18'\] are not benchmarked"):
        bench_models(threads=1, models=("resnet18",))
