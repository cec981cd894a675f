import json

import pytest

from leanconv.cli import main

pytestmark = pytest.mark.usefixtures("quick_timing")  # conftest.py says why

SMALL = ["--data", "synthetic", "--candidates", "dwsep", "--pointwise-candidates",
         "group:g=2,shuffle=1", "--threads", "1", "--calib-images", "64",
         "--held-out-images", "32", "--quiet", "--no-baselines"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.mark.parametrize("args, message", [
    (["--speedup", "1"], "speedup=1.0 asks for no speed-up"),
    (["--speedup", "2", "--candidates", "hetconv:q=2"], "candidates"),
    (["--speedup", "50"], "is unreachable"),
])
def test_cli_shrink_errors_are_one_line_with_exit_2(args, message, capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["shrink", "resnet20_cifar", *args, *SMALL, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("leanconv shrink: error: ") and message in error
    assert not out.exists()


@pytest.mark.parametrize("args", [["--speedup", "2", "--macs-ratio", "0.5"],
                                  ["--macs-ratio", "1.5"], ["--latency-ms", "-1"], []])
def test_cli_shrink_refuses_bad_or_missing_targets(args, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["shrink", "resnet20_cifar", *args, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "leanconv shrink: error:" in capsys.readouterr().err


def test_cli_shrink_plan_round_trips_through_convert_plan(capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["shrink", "resnet20_cifar", "--macs-ratio", "0.8", "--epochs", "0", *SMALL,
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "speed-up (measured)" in text and f"wrote {out / 'plan.json'}" in text
    plan = json.loads((out / "plan.json").read_text())
    replaced = sum(spec != "keep" for spec in plan.values())
    assert replaced > 0
    assert main(["convert", "resnet20_cifar", "--plan", str(out / "plan.json"), "--out",
                 str(tmp_path / "again.pt")]) == 0
    assert f"{replaced} of 19 layers replaced by the plan" in capsys.readouterr().out  # + stem
