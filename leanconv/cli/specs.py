"""``leanconv specs``: the conv spec strings the factory, the converter and the zoo accept."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "specs", help="the conv spec kinds and their parameters",
        description="The conv spec strings (e.g. hetconv:p=4) that the operator factory, the "
                    "converter, the zoo and shrink accept, with each kind's parameters.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.ops.create_conv import conv_spec_help

    return conv_spec_help()
