"""The ``leanconv`` command line: one module per command (:data:`COMMANDS`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leanconv import __version__
from leanconv.cli import (
    bench,
    compare,
    convert,
    cost,
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
# what to print. A ValueError or ExportError is the user's error: one line on stderr, exit 2.
COMMANDS = (ops, models, cost, convert, shrink, train, eval, compare, export, bench, specs)
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
        print(args.func(args))
    except (ValueError, ExportError) as error:
        print(f"leanconv {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
