"""``leanconv deploy-check``: the free baselines of a model (every installed runtime x
precision, side by side, with accuracy), the fastest within 0.3 points, the JSON record, and
one-line errors."""

import json

import pytest

from leanconv.cli import build_parser, main
from leanconv.runtimes import RUNTIMES

SMALL = ["resnet20_cifar", "--in-chans", "1", "--input", "1x28x28", "--batch", "2",
         "--data", "synthetic", "--threads", "1", "--calib-images", "32", "--quiet"]


def test_deploy_check_prints_the_machine_the_table_and_the_best(capsys, tmp_path):
    out = tmp_path / "sub" / "baselines.json"
    assert main(["deploy-check", *SMALL, "--runtime", "torch", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("machine: ") and "1 thread;" in lines[0] and "torch " in lines[0]
    assert lines[1].startswith("free baselines of resnet20_cifar at 2x1x28x28 (the network "
                               "unchanged; 512 test images of synthetic")
    assert lines[2].startswith("| runtime | precision | ms |")
    assert lines[4].startswith("| torch | fp32 |") and "| 1.00x | 1.00x |" in lines[4]
    best = next(line for line in lines if line.startswith("fastest within 0.3 points of "
                                                          "the original's accuracy ("))
    assert "x over torch fp32" in best and lines[-1] == f"wrote {out}"
    record = json.loads(out.read_text())
    assert record["model"] == "resnet20_cifar" and record["data"] == "synthetic"
    assert record["machine"]["threads"] == 1 and record["input_shape"] == [2, 1, 28, 28]
    assert record["rows"][0]["runtime"] == "torch" and record["no_accuracy"] is None
    assert record["best"] in {f"{r['runtime']} {r['precision']}" for r in record["rows"]}
    assert not any(r["runtime"] != "torch" for r in record["rows"])


@pytest.mark.slow
def test_deploy_check_in_every_runtime_without_labels(capsys):
    assert main(["deploy-check", *SMALL, "--num-classes", "4"]) == 0
    text = capsys.readouterr().out
    for runtime in RUNTIMES.values():
        for precision in runtime.available_precisions():
            assert f"| {runtime.name} | {precision} |" in text
    assert "fastest within 0.3 points of full agreement with the original (no accuracy: " \
           "'resnet20_cifar' has 4 outputs; data='synthetic' has 10 classes" in text
    table = next(line for line in text.splitlines() if line.startswith("| torch | fp32 |"))
    assert "| - | 100.00 |" in table  # no accuracy, full agreement with itself


@pytest.mark.parametrize(("args", "message"), [
    (["--runtime", "tvm"], "runtime='tvm' is invalid; choose one of"),
    (["--input", "1x28x32"], "--input 1x28x32 is not square"),
    (["--data", "nothing"], "data='nothing' is invalid"),
])
def test_deploy_check_errors_are_one_line(args, message, capsys):
    assert main(["deploy-check", *SMALL, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leanconv deploy-check: error: ") and message in err
    assert err.count("\n") == 1


def test_a_runtime_asked_for_but_not_installed_names_its_extra(capsys, monkeypatch):
    monkeypatch.setattr(type(RUNTIMES.get("openvino")), "modules", ("leanconv_missing",))
    assert main(["deploy-check", *SMALL, "--runtime", "openvino"]) == 2
    assert "pip install 'leanconv[openvino]'" in capsys.readouterr().err


def test_an_unwritable_json_stops_before_any_work(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    assert main(["deploy-check", "resnet20_cifar", "--json", str(blocker / "x.json")]) == 2
    assert "--json=" in capsys.readouterr().err


def test_the_help_says_what_it_is_for():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    text = subparsers.choices["deploy-check"].format_help()
    assert "without changing the network" in text and "--calib-images" in text
