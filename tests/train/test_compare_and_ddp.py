import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leanconv.cli import main
from leanconv.train.plots import pareto_front


def test_pareto_front():
    points = [(1.0, 80.0), (2.0, 85.0), (3.0, 84.0), (0.5, 70.0), (4.0, 90.0)]
    assert pareto_front(points) == [3, 0, 1, 4]


@pytest.mark.slow
def test_compare_writes_results_and_plots(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--data", "synthetic", "--subset", "128", "--epochs", "1",
                 "--batch-size", "32", "--convs", "standard", "hetconv:p=2",
                 "--seeds", "0", "1", "--out", str(out), "--threads", "1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| standard |" in printed and "| hetconv:p=2 |" in printed
    results = json.loads((out / "results.json").read_text())
    rows = {r["conv"]: r for r in results["rows"]}
    assert results["machine"]["threads"] == 1 and results["machine"]["cpu"]
    assert rows["hetconv:p=2"]["macs_analytic"] < rows["standard"]["macs_analytic"]
    assert all(r["seeds"] == 2 and r["latency_b32_ms"] > 0 for r in rows.values())
    for name in ("acc_vs_macs.png", "acc_vs_latency.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "results.csv").read_text().startswith("conv,test_acc_mean")
    assert len(list(out.glob("*-seed*"))) == 4


def test_compare_checks_the_runtime_before_training(tmp_path):
    from leanconv.train.compare import compare, latency_label, markdown_table
    from leanconv.train.config import TrainConfig

    assert latency_label() == latency_label("torch", "fp32") == "folded"
    assert latency_label("onnxruntime") == "onnxruntime fp32"
    assert latency_label("openvino", "int8") == "openvino int8"
    config = TrainConfig(data="synthetic", subset=16, epochs=1)
    with pytest.raises(ValueError, match=r"compare: precision='int8' is invalid for runtime "
                                         r"'torch'; valid: fp32, bf16"):
        compare(config, ["standard"], [0], tmp_path / "cmp", precision="int8")
    assert not (tmp_path / "cmp").exists()
    row = {"conv": "standard", "test_acc_mean": 0.5, "test_acc_std": 0.0, "seeds": 1,
           "params": 10, "macs_analytic": 1e6, "macs_executed": 1e6, "memory_access": 1e6,
           "latency_b1_ms": 1.0, "latency_b32_ms": 2.0, "train_images_per_s": 100.0}
    assert "latency b32 ms (folded)" in markdown_table([row])
    assert "latency b1 ms (onnxruntime int8)" in markdown_table([row], "onnxruntime int8")


@pytest.mark.slow
def test_compare_measures_latency_in_a_runtime(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--data", "synthetic", "--subset", "64", "--epochs", "1",
                 "--batch-size", "32", "--convs", "standard", "--out", str(out),
                 "--threads", "1", "--no-progress", "--runtime", "onnxruntime",
                 "--precision", "int8"]) == 0
    assert "latency b32 ms (onnxruntime int8)" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["latency_in"] == "onnxruntime int8"
    assert results["rows"][0]["latency_b1_ms"] > 0


def _train_cmd(out: Path, epochs: int, train_size: str = "128") -> list[str]:
    return [sys.executable, "-m", "leanconv", "train", "--nproc", "2", "--data", "synthetic",
            "--subset", train_size, "--epochs", str(epochs), "--batch-size", "16",
            "--threads", "1", "--out", str(out), "--no-progress"]


@pytest.mark.slow
def test_ddp_two_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = _train_cmd(out, 1)
    cmd.remove("--no-progress")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_in_sync"] is True
    assert run.stdout.count("epoch 1/1: train loss") == 1  # only rank 0 prints
    assert {p.name for p in out.iterdir()} == {"config.json", "metrics.csv", "summary.json",
                                               "last.pt", "best.pt"}


def _children_with_rank(parent: int, rank: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and f"LEANCONV_TEST_RUN={parent}".encode() in \
                environ and "torch.distributed.run" not in status:
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_a_dying_rank_ends_the_run_with_an_error(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LEANCONV_DIST_TIMEOUT": "20",
           "LEANCONV_TEST_RUN": str(os.getpid())}
    proc = subprocess.Popen(_train_cmd(tmp_path / "dead", 50, "2048"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    victims: list[int] = []
    while not victims and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1)
        victims = [p for p in _children_with_rank(os.getpid(), "1")
                   if "leanconv" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="ignore")]
    assert victims, "rank 1 never started"
    time.sleep(3)
    os.kill(victims[0], signal.SIGKILL)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the run hung after a rank died") from None
    assert proc.returncode != 0
    assert "failed" in stderr.lower() or "error" in stderr.lower()
