"""``leanconv convert``: swap a model's convs for an operator (:func:`leanconv.convert`),
print what changed, optionally save the result for :func:`leanconv.load_model`."""

from __future__ import annotations

import argparse
from typing import Any

from leanconv.cli._args import add_input_argument, add_model_argument, positive_int


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("convert", help="swap a model's convs for an operator")
    add_model_argument(parser)
    parser.add_argument("--to", required=True, help="conv spec, e.g. hetconv:p=4 or standard")
    parser.add_argument("--include", nargs="+", default=["*"], metavar="GLOB")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="GLOB")
    parser.add_argument("--min-channels", type=positive_int, default=1)
    parser.add_argument("--convert-stem", action="store_true", help="also convert the stem")
    add_input_argument(parser, "for the MAC columns")
    parser.add_argument("--out", help="save the converted model here (leanconv.load_model "
                        "rebuilds it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.convert import ConversionPolicy, convert, save_converted
    from leanconv.loading import load_model

    model, info = load_model(args.model)
    shape = (1, *args.input) if args.input else info.input_shape(1)
    policy = ConversionPolicy(tuple(args.include), tuple(args.exclude), args.min_channels,
                              keep_stem=not args.convert_stem)
    converted, report = convert(model, args.to, policy=policy, input_shape=shape, inplace=True)
    text = report.table()
    if args.out:
        save_converted(args.out, converted, info, report)
        text += f"\nsaved {args.out} (load it with leanconv.load_model)"
    return text
