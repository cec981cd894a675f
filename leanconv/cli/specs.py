"""``leanconv specs``: the conv spec strings the factory, the converter and the zoo accept."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("specs", help="list the conv spec kinds and their parameters")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.ops.create_conv import conv_spec_help

    return conv_spec_help()
