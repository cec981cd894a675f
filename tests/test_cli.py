import json
import subprocess
import sys

from leanconv.cli import main


def test_ops_table(capsys):
    assert main(["ops", "--in-channels", "16", "--out-channels", "16", "--size", "8"]) == 0
    out = capsys.readouterr().out
    for spec in ("standard", "hetconv:p=4", "compconv:c0=128", "dwsep"):
        assert spec in out
    # HetConv p=4: 16 * (4 * 9 + 12) = 768 parameters
    assert "768" in out


def test_bad_spec_is_a_clean_error(capsys):
    assert main(["ops", "--spec", "hetconv:p=5", "--in-channels", "16"]) == 2
    err = capsys.readouterr().err
    assert "in_channels=16 is not divisible by p=5" in err and "Traceback" not in err


def test_python_m_and_bad_integer():
    run = subprocess.run([sys.executable, "-m", "leanconv", "ops", "--size", "0"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "'0' is not an int >= 1" in run.stderr
    run = subprocess.run([sys.executable, "-m", "leanconv", "specs"], capture_output=True,
                         text=True)
    assert run.returncode == 0 and "hetconv:" in run.stdout


def test_models_table(capsys):
    assert main(["models", "--pattern", "resnet*"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "25,557,032" in out and "4089.2" in out
    assert main(["models", "--pattern", "vgg16_cifar", "--conv", "hetconv:p=4"]) == 0
    assert "hetconv:p=4" in capsys.readouterr().out


def test_models_bad_pattern_and_spec(capsys):
    assert main(["models", "--pattern", "nothing*"]) == 2
    assert "no model matches --pattern 'nothing*'" in capsys.readouterr().err
    assert main(["models", "--pattern", "resnet18", "--conv", "bogus"]) == 2
    assert "unknown kind 'bogus'" in capsys.readouterr().err


def test_cost_table_and_compare(capsys, tmp_path):
    assert main(["cost", "resnet20_cifar", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "stages" in out and "TOTAL" in out and "269,722" in out
    assert main(["cost", "resnet20_cifar", "--compare", "standard", "hetconv:p=4",
                 "mixconv:k=3.5.7,split=exp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("conv") and len(lines) == 4
    assert lines[1].split()[0] == "standard" and lines[3].split()[0] == "mixconv:k=3.5.7,split=exp"
    out_file = tmp_path / "cost.json"
    assert main(["cost", "resnet20_cifar", "--conv", "hetconv:p=4", "--format", "json",
                 "--out", str(out_file)]) == 0
    data = json.loads(out_file.read_text())
    assert data["totals"]["macs_analytic"] < data["totals"]["macs_executed"]


def test_cost_errors(capsys):
    assert main(["cost", "resnet2", "--compare", "standard"]) == 2
    assert "close matches" in capsys.readouterr().err
    assert main(["cost", "resnet20_cifar", "--conv", "dwsep", "--compare", "standard"]) == 2
    assert "either --conv or --compare" in capsys.readouterr().err
    run = subprocess.run([sys.executable, "-m", "leanconv", "cost", "resnet18", "--input",
                          "3x0x4"], capture_output=True, text=True)
    assert run.returncode == 2 and "'3x0x4' is not CxHxW" in run.stderr
