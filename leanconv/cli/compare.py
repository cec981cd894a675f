"""``leanconv compare``: train the model once per operator (and seed) and put test accuracy
next to measured cost (:func:`leanconv.train.compare.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from leanconv.cli.train import add_train_options, train_config
from leanconv.train.presets import DEFAULT_CONVS, PRESETS


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("compare", help="train once per operator, compare costs")
    parser.add_argument("--convs", nargs="+", metavar="SPEC",
                        help="conv specs (default: " + " ".join(DEFAULT_CONVS) + ")")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 0)")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="quick")
    parser.add_argument("--out", help="output folder (default runs/compare-MODEL-PRESET)")
    parser.add_argument("--no-progress", action="store_true")
    add_train_options(parser, skip=("--conv", "--seed"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.train.compare import compare, markdown_table

    config = train_config(args, **PRESETS[args.preset], progress=not args.no_progress)
    out = Path(args.out or f"runs/compare-{config.model}-{args.preset}")
    rows = compare(config, args.convs or list(DEFAULT_CONVS), args.seeds or [0], out)
    return (f"{markdown_table(rows)}\n\nwrote {out}/results.csv, results.json, results.md, "
            f"acc_vs_macs.png, acc_vs_latency.png")
