"""``leanconv models``: every zoo model with its parameters and MACs at its reference input
size (:func:`leanconv.bench.zoo_costs`)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models", help="every zoo model with its parameters and MACs at its input size",
        description="Every zoo model (or those matching --pattern) with its parameters, "
                    "analytic and executed MACs and memory access at its reference input size, "
                    "optionally built with --conv SPEC.")
    parser.add_argument("--pattern", default="*", help="glob on model names, e.g. 'resnet*'")
    parser.add_argument("--conv", help="conv spec replacing the spatial convs, e.g. hetconv:p=4")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.bench.compare import zoo_costs
    from leanconv.tables import format_table

    header = ("model", "params", "MMACs analytic", "MMACs executed", "M elements moved",
              "input")
    rows = [(r["model"], f"{r['params']:,}", f"{r['macs_analytic'] / 1e6:.1f}",
             f"{r['macs_executed'] / 1e6:.1f}", f"{r['memory_access'] / 1e6:.1f}",
             "x".join(map(str, r["input_shape"][1:]))) for r in zoo_costs(args.pattern, args.conv)]
    title = "zoo models" + (f" with conv={args.conv!r}" if args.conv else "")
    return f"{title}\n{format_table(header, rows)}"
