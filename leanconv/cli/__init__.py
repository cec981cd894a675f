"""The ``leanconv`` command line.

``leanconv ops``     every operator on one layer shape: parameters and MACs, side by side.
``leanconv models``  every zoo model: parameters and MACs at its reference input size.
``leanconv cost``    one model's cost per layer, or several operators compared in one model.
``leanconv convert`` swap a model's convs for an operator and report what changed.
``leanconv train``   train one zoo model with one operator on Fashion-MNIST (or DDP).
``leanconv eval``    test accuracy, loss and per-class accuracy of a checkpoint.
``leanconv compare`` train once per operator and put accuracy next to measured cost.
``leanconv shrink``  a latency target on this machine: one operator per layer, least loss.
``leanconv export``  fold a model and export it to ONNX, verified in onnxruntime.
``leanconv bench``   operators vs the kernels they replace, models vs torchvision / timm.
``leanconv specs``   the conv spec strings the factory, the converter and the zoo accept.

MODEL is everywhere what :func:`leanconv.load_model` takes: a zoo name, ``torchvision:NAME``,
``timm:NAME``, a training checkpoint or a ``leanconv convert --out`` file.
"""

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


def build_parser() -> argparse.ArgumentParser:
    """The ``leanconv`` parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="leanconv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"leanconv {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
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
