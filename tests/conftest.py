import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def quick_timing(monkeypatch):
    """shrink times each plan against the original for a tenth of its budget: these tests
    check what shrink does with its measurements, not how precise they are (that is
    benchmarks/shrink_vs_baselines.py's job); the calibration plans alone took 30 s a run."""
    import leanconv.search.deployment as deployment

    monkeypatch.setattr(deployment, "MIN_RUN_TIME", 0.02)
    monkeypatch.setattr(deployment, "ROUNDS", 3)
    monkeypatch.setattr(deployment, "FINAL_ROUNDS", 3)


# Tests that load OpenVINO run last (a shrink with its free baselines loads it too: the other
# shrink tests pass --no-baselines / baselines=False). Once OpenVINO's CPU plugin (its TBB
# thread pool) is loaded in a process, a later fork (DataLoader worker processes) followed by
# torch.compile crashed the process with SIGSEGV (reproduced: tests/runtimes + tests/data +
# tests/deploy/test_compile in one pytest run, 3 of 3; without the OpenVINO tests, or with
# onnxruntime alone, it passes).
OPENVINO_FILES = ("tests/runtimes/", "tests/bench/test_baselines.py",
                  "tests/cli/test_deploy_check.py", "tests/search/test_deployment.py",
                  "tests/train/test_evaluate_artifact.py")


def pytest_collection_modifyitems(items):
    def loads_openvino(item):
        return (item.nodeid.startswith(OPENVINO_FILES)
                or any(word in item.nodeid.lower() for word in ("openvino", "model.xml")))

    items.sort(key=loads_openvino)  # stable: the order within each group is kept
