import argparse
import subprocess
import sys

import pytest

from leanconv.cli import COMMANDS, build_parser, main


def test_python_m_and_bad_integer():
    run = subprocess.run([sys.executable, "-m", "leanconv", "ops", "--size", "0"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "'0' is not an int >= 1" in run.stderr
    run = subprocess.run([sys.executable, "-m", "leanconv", "specs"], capture_output=True,
                         text=True)
    assert run.returncode == 0 and "hetconv:" in run.stdout


def test_cpu_only_notice_of_cpp_extension_is_filtered():
    # torch.utils.benchmark imports torch.utils.cpp_extension, which logs "No CUDA runtime is
    # found" on a machine without CUDA; other records of that logger still pass
    code = ("import logging, leanconv, torch.utils.benchmark\n"
            "logging.getLogger('torch.utils.cpp_extension').warning('kept')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and "No CUDA runtime" not in run.stderr
    assert "kept" in run.stderr


def test_every_command_is_registered_with_its_run():
    parser = build_parser()
    names = ["ops", "models", "cost", "convert", "deploy_check", "shrink", "train", "eval",
             "compare", "export", "bench", "specs"]
    assert [c.__name__.rsplit(".", 1)[1] for c in COMMANDS] == names
    for name, command in zip(names, COMMANDS, strict=True):
        required = {"cost": ["resnet18"], "convert": ["resnet18", "--to", "dwsep"],
                    "deploy_check": ["resnet18"],
                    "eval": ["--checkpoint", "x.pt"], "export": ["resnet18", "--onnx", "x"],
                    "bench": ["ops"],
                    "shrink": ["resnet18", "--speedup", "1.5", "--out", "x"]}.get(name, [])
        args = parser.parse_args([name.replace("_", "-"), *required])
        assert args.func is command.run


def test_specs(capsys):
    assert main(["specs"]) == 0
    out = capsys.readouterr().out
    assert "hetconv:" in out and "mixconv:" in out


def test_version_and_missing_command(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and "leanconv 0." in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2


IMPORT_CHECK = """
import sys
import leanconv.cli
heavy = ["leanconv.train.trainer", "leanconv.train.compare", "leanconv.train.plots",
         "leanconv.bench", "leanconv.train.distributed", "matplotlib", "onnx", "onnxruntime",
         "timm", "fvcore"]
print([m for m in heavy if m in sys.modules])
"""


def test_the_cli_imports_no_command_work():
    run = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"


FAST_START = """
import sys
from leanconv.cli import build_parser, main
build_parser()
parsed = set(sys.modules)
main(["specs"])
slow = ["torchvision", "leanconv.deploy", "leanconv.cost", "leanconv.converter",
        "leanconv.train.trainer"]
print([m for m in slow if m in parsed], [m for m in slow if m in sys.modules])
"""


def test_help_and_specs_import_only_what_they_need():
    """`leanconv --help` builds the parser without torch's heavy dependants (torchvision takes
    about 1.2 s to import), and `leanconv specs` needs only the operators."""
    run = subprocess.run([sys.executable, "-c", FAST_START], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[] []"


def _help_texts() -> dict[str, str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"leanconv": parser.format_help(),
            **{f"leanconv {name}": sub.format_help() for name, sub in subparsers.choices.items()}}


def test_every_help_is_plain_text():
    texts = _help_texts()
    assert len(texts) == 1 + len(COMMANDS)
    for command, text in texts.items():
        for markup in ("``", ":func:", ":mod:", ":class:", ":meth:", ":data:"):
            assert markup not in text, f"{command} --help shows {markup!r}"


def test_every_command_has_a_summary_and_a_description():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {action.dest: action.help for action in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        assert summaries[name] and len(summaries[name]) <= 120, name
        assert sub.description and sub.description != summaries[name], name
    # the one-liners say what the commands do today: train takes any model and data
    assert "any model" in summaries["train"] and "image folder" in summaries["train"]
