"""The ``leanconv`` command line: one module per command (:data:`COMMANDS`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from leanconv import __version__
from leanconv.cli import (
    bench,
    compare,
    convert,
    cost,
    deploy_check,
    eval,
    export,
    models,
    ops,
    shrink,
    specs,
    train,
)
from leanconv.errors import ExportError

# One module per command: ``add_parser(subparsers)`` declares its arguments and sets
# ``func=run``; ``run(args) -> str`` does the work (its heavy imports inside) and returns
# what to print. A ValueError or ExportError is the user's error, and an OSError (a file that
# cannot be read or written) too: one line on stderr, exit 2.
COMMANDS = (ops, models, cost, convert, deploy_check, shrink, train, eval, compare, export, bench,
            specs)
# What each command writes: {command: {flag: "file" or "folder"}}, checked before it runs
OUTPUTS = {"convert": {"--out": "file"}, "export": {"--onnx": "file"}, "cost": {"--out": "file"},
           "shrink": {"--out": "folder"}, "train": {"--out": "folder"},
           "compare": {"--out": "folder"}, "bench": {"--out": "file"},
           "deploy-check": {"--json": "file"}}
DESCRIPTION = ("Efficient convolution operators for PyTorch, and the tools to make a trained "
               "CNN cheaper on this machine: convert, shrink, train, measure and export.")
EPILOG = ("MODEL is everywhere what leanconv.load_model takes: a zoo name (leanconv models "
          "lists them), torchvision:NAME, timm:NAME, a training checkpoint (runs/NAME/best.pt) "
          "or a `leanconv convert --out` file. 'leanconv COMMAND --help' describes a command.")


def build_parser() -> argparse.ArgumentParser:
    """The ``leanconv`` parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="leanconv", description=DESCRIPTION,
                                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"leanconv {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       title="commands")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what `train --nproc` forwards to torchrun
    try:
        check_outputs(args)
        print(args.func(args))
    except (ValueError, ExportError) as error:
        print(f"leanconv {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"leanconv {args.command}: error: {os_error_line(error)}", file=sys.stderr)
        return 2
    return 0


def check_outputs(args: argparse.Namespace) -> None:
    """ValueError, before any work, when an output path given to the command of ``args``
    (:data:`OUTPUTS`) cannot be written (:func:`leanconv.io.check_writable`)."""
    given = {flag: getattr(args, flag[2:].replace("-", "_"), None)
             for flag in OUTPUTS.get(args.command, {})}
    if not any(value is not None for value in given.values()):
        return
    from leanconv.io import check_writable  # imports torch: only for a command with outputs

    for flag, value in given.items():
        if value is not None:
            check_writable(value, folder=OUTPUTS[args.command][flag] == "folder",
                           argument=flag)


def os_error_line(error: OSError) -> str:
    """``error`` on one line: the file it concerns and the system's reason."""
    if error.filename is None:
        return f"cannot read or write: {error}"
    paths = " -> ".join(repr(os.fsdecode(name)) for name in (error.filename, error.filename2)
                        if name is not None)
    return f"cannot read or write {paths}: {error.strerror or error}"
