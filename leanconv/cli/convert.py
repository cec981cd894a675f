"""``leanconv convert``: swap a model's convs for an operator (:func:`leanconv.convert`),
with weights fitted on calibration images (``--calibrate DATA``) or inherited data-free,
print what changed, optionally save the result for :func:`leanconv.load_model`."""

from __future__ import annotations

import argparse
from typing import Any

from leanconv.cli._args import (
    DATA_FLAGS,
    DATA_SWITCHES,
    add_build_options,
    add_data_options,
    add_input_argument,
    add_model_argument,
    build_options,
    given_options,
    positive_int,
    square_side,
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert", help="swap a model's convs for an operator or a per-layer plan, weights "
                        "inherited or fitted on images",
        description="Replace MODEL's convolutions by an efficient operator (--to SPEC, by the "
                    "default policy) or by a per-layer plan (--plan FILE), with weights "
                    "inherited data-free or fitted on calibration images (--calibrate DATA); "
                    "prints one row per layer with its parameters and MACs, and saves the result "
                    "for leanconv.load_model with --out.")
    add_model_argument(parser)
    add_build_options(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", help="conv spec, e.g. hetconv:p=4 or standard")
    target.add_argument("--plan", metavar="FILE", help="a JSON plan, {layer name or glob: "
                        "conv spec or 'keep'}: one operator per layer (e.g. a leanconv "
                        "shrink plan.json); the policy flags below do not apply to it")
    parser.add_argument("--include", nargs="+", metavar="GLOB")
    parser.add_argument("--exclude", nargs="+", metavar="GLOB")
    parser.add_argument("--min-channels", type=positive_int)
    parser.add_argument("--convert-stem", action="store_true", help="also convert the stem")
    parser.add_argument("--pointwise", action="store_true",
                        help="1x1 convs are candidates too (for an operator that takes them, "
                             "e.g. group:g=2,shuffle=1)")
    add_input_argument(parser, "for the MAC columns")
    parser.add_argument("--calibrate", metavar="DATA", help="fit the new layers' weights on "
                        "these images, labels unused (fashion-mnist, imagefolder:DIR, "
                        "images:DIR (any images, no labels), synthetic: the training split, at "
                        "the model's input size and channels, normalised as it was trained), "
                        "then re-estimate BatchNorm statistics; default: data-free inheritance")
    parser.add_argument("--calib-images", type=positive_int, default=1024,
                        help="calibration images (default 1024)")
    add_data_options(parser, skip=("--data", "--in-chans"))
    parser.add_argument("--out", help="save the converted model here (leanconv.load_model "
                        "rebuilds it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.converter import ConversionPolicy, convert, read_plan, save_converted
    from leanconv.loading import load_model

    policy_flags = [flag for flag, given in (
        ("--include", args.include), ("--exclude", args.exclude),
        ("--min-channels", args.min_channels), ("--convert-stem", args.convert_stem),
        ("--pointwise", args.pointwise)) if given]
    if args.plan:
        if policy_flags:
            raise ValueError(f"{' '.join(policy_flags)} select layers for --to; a --plan "
                             f"names its layers itself")
        to, policy = read_plan(args.plan), None
    else:
        to = args.to
        policy = ConversionPolicy(tuple(args.include or ("*",)), tuple(args.exclude or ()),
                                  args.min_channels or 1, keep_stem=not args.convert_stem,
                                  pointwise=args.pointwise)
    model, info = load_model(args.model, **build_options(args))
    shape = (1, *args.input) if args.input else info.input_shape(1)
    calibration = None
    if args.calibrate:
        from leanconv.data.load import dataset_for_model

        options = given_options(args, DATA_FLAGS, DATA_SWITCHES, skip=("--in-chans",))
        if args.input and "image_size" not in options:  # calibrate at the input converted for
            options["image_size"] = square_side(args.input, "--input")
        data = dataset_for_model(info, args.calibrate, need_labels=False, **options)
        calibration = data.model_inputs(args.calib_images)
    converted, report = convert(model, to, policy=policy, input_shape=shape, inplace=True,
                                calibration=calibration, require_change=True)
    text = report.table()
    if args.out:
        save_converted(args.out, converted, info, report)
        text += f"\nsaved {args.out} (load it with leanconv.load_model)"
    return text
