"""Every command checks its output paths before any work (leanconv.cli.OUTPUTS,
leanconv.io.check_writable), and a file that cannot be read or written is one line, exit 2."""

import time

import pytest

from leanconv.cli import OUTPUTS, build_parser, convert, cost, export, main, shrink
from leanconv.io import check_writable

# each command with its output under an existing file (``{blocker}``: that file)
BLOCKED = [
    (convert, ["convert", "torchvision:resnet18", "--to", "hetconv:p=4", "--out",
               "{blocker}/x.pt"]),
    (export, ["export", "torchvision:resnet18", "--onnx", "{blocker}/x.onnx"]),
    (cost, ["cost", "torchvision:resnet18", "--out", "{blocker}/cost.txt"]),
    (shrink, ["shrink", "torchvision:resnet18", "--speedup", "1.5", "--out", "{blocker}/run"]),
    (shrink, ["shrink", "torchvision:resnet18", "--speedup", "1.5", "--out", "{blocker}"]),
]


def _never_run(args):
    raise AssertionError(f"{args.command} ran although its output cannot be written")


@pytest.mark.parametrize(("command", "argv"), BLOCKED,
                         ids=["convert", "export", "cost", "shrink-under", "shrink-file"])
def test_an_unwritable_output_stops_the_command_before_it_loads_anything(
        tmp_path, capsys, monkeypatch, command, argv):
    blocker = tmp_path / "somefile"
    blocker.write_text("in the way")
    monkeypatch.setattr(command, "run", _never_run)  # the parser's func=run, read at build
    argv = [arg.format(blocker=blocker) for arg in argv]
    start = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"leanconv {argv[0]}: error: ")
    assert f"--{argv[-2][2:]}={argv[-1]!r}" in err
    assert (f"{str(blocker)!r} is a file, not a folder" in err or "is a file; give a folder"
            in err)


def test_every_declared_output_is_a_flag_of_its_command():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for command, outputs in OUTPUTS.items():
        flags = {flag for action in subparsers.choices[command]._actions
                 for flag in action.option_strings}
        assert set(outputs) <= flags, command
        assert set(outputs.values()) <= {"file", "folder"}


def test_check_writable_says_what_is_wrong_and_what_is_valid(tmp_path):
    blocker = tmp_path / "somefile"
    blocker.write_text("in the way")
    assert check_writable(tmp_path / "new" / "deeper" / "x.pt", folder=False,
                          argument="--out") == tmp_path / "new" / "deeper" / "x.pt"
    assert check_writable(blocker, folder=False, argument="--out") == blocker  # replaced
    assert check_writable(tmp_path / "run", folder=True, argument="--out") == tmp_path / "run"
    assert check_writable(tmp_path, folder=True, argument="--out") == tmp_path
    with pytest.raises(ValueError, match=r"--onnx='.*' is a directory; give a file name"):
        check_writable(tmp_path, folder=False, argument="--onnx")
    with pytest.raises(ValueError, match=r"--out='.*somefile' is a file; give a folder"):
        check_writable(blocker, folder=True, argument="--out")
    with pytest.raises(ValueError, match=r"--out='.*somefile/a/b\.pt' cannot be written: "
                                         r"'.*somefile' is a file, not a folder; give a path"):
        check_writable(blocker / "a" / "b.pt", folder=False, argument="--out")


def test_an_os_error_while_working_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.pt"))

    monkeypatch.setattr(cost, "run", denied)
    assert main(["cost", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert err == (f"leanconv cost: error: cannot read or write {str(tmp_path / 'x.pt')!r}: "
                   f"Permission denied\n")


def test_an_atomic_write_that_fails_names_the_file_not_its_temporary(tmp_path, monkeypatch):
    from leanconv import io

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".x.pt.abc.tmp"))

    monkeypatch.setattr(io, "_replace", full)
    with pytest.raises(OSError, match="No space left") as caught:
        io.atomic_write_text(tmp_path / "x.pt", "text")
    assert caught.value.filename == str(tmp_path / "x.pt")
