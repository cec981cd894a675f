"""``leanconv ops``: every operator on one layer shape, parameters and MACs side by side
(:func:`leanconv.bench.compare_ops`)."""

from __future__ import annotations

import argparse
from typing import Any

from leanconv.cli._args import positive_int


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ops", help="every operator on one layer shape: parameters and MACs side by side",
        description="Every operator (or each --spec) as one layer of the given shape: "
                    "parameters, the MACs its kernels execute and its paper's formula, relative "
                    "to the first.")
    parser.add_argument("--in-channels", type=positive_int, default=256)
    parser.add_argument("--out-channels", type=positive_int, default=256)
    parser.add_argument("--kernel-size", type=positive_int, default=3)
    parser.add_argument("--stride", type=positive_int, default=1)
    parser.add_argument("--size", type=positive_int, default=28, help="input height and width")
    parser.add_argument("--spec", action="append",
                        help="conv spec (repeatable); default: a set of every kind")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.bench.compare import DEFAULT_OP_SPECS, compare_ops
    from leanconv.tables import format_table

    records = compare_ops(args.in_channels, args.out_channels, args.kernel_size, args.stride,
                          args.size, args.spec or DEFAULT_OP_SPECS)
    header = ("spec", "module", "params", "MMACs (counted)", "MMACs (analytic)", "vs first")
    rows = [(r["spec"], r["module"], f"{r['params']:,}", f"{r['macs_executed'] / 1e6:.2f}",
             None if r["macs_analytic"] is None else f"{r['macs_analytic'] / 1e6:.2f}",
             f"{r['vs_first']:.3f}") for r in records]
    k = args.kernel_size
    return (f"{args.in_channels}->{args.out_channels} channels, {k}x{k}, stride {args.stride}, "
            f"input 1x{args.in_channels}x{args.size}x{args.size}\n{format_table(header, rows)}")
