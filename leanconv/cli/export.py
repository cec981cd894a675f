"""``leanconv export``: fold a model and export it to ONNX, verified against PyTorch in
onnxruntime (:func:`leanconv.export_onnx`)."""

from __future__ import annotations

import argparse
from typing import Any

from leanconv.cli._args import (
    add_build_options,
    add_input_argument,
    add_model_argument,
    build_options,
    positive_int,
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="fold a model and export it to ONNX, verified against PyTorch in "
                       "onnxruntime",
        description="Fold MODEL (BatchNorm, shuffles, each operator in its fastest form), "
                    "export it to ONNX and write the file only when onnxruntime's output "
                    "matches PyTorch's.")
    add_model_argument(parser)
    add_build_options(parser, in_chans=False)
    parser.add_argument("--conv", help="conv spec for the spatial convs (torchvision/timm: "
                        "converted), e.g. hetconv:p=4")
    parser.add_argument("--checkpoint", help="weights: a training checkpoint of MODEL or a "
                        "leanconv convert --out file made from MODEL")
    parser.add_argument("--onnx", required=True, help="output file, e.g. model.onnx")
    parser.add_argument("--opset", type=positive_int,
                        help="ONNX opset (default: leanconv.deploy.onnx_export.DEFAULT_OPSET, "
                             "19; DeformConv needs 19)")
    parser.add_argument("--dynamic-batch", action="store_true", help="leave the batch free")
    add_input_argument(parser, "of the exported input")
    parser.add_argument("--batch", type=positive_int, default=1)
    parser.add_argument("--no-fold", action="store_true", help="export without folding")
    parser.add_argument("--threads", type=positive_int, help="onnxruntime threads")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.converter import load_with_conv
    from leanconv.deploy.onnx_export import DEFAULT_OPSET, export_onnx
    from leanconv.loading import load_model, reference_kind

    if args.conv and (args.checkpoint or reference_kind(args.model) == "file"):
        raise ValueError("--conv is taken from the checkpoint; drop it")
    if args.checkpoint:  # its own head and stem; --num-classes, --input: checks
        model, info = load_model(args.checkpoint, **build_options(args))
        if info.model != args.model:
            raise ValueError(f"--checkpoint {args.checkpoint!r} holds {info.model!r}, not "
                             f"{args.model!r}")
    else:
        model, info = load_with_conv(args.model, args.conv, **build_options(args))
    shape = (args.batch, *args.input) if args.input else info.input_shape(args.batch)
    result = export_onnx(model, args.onnx, shape, opset=args.opset or DEFAULT_OPSET,
                         dynamic_batch=args.dynamic_batch, fold_first=not args.no_fold,
                         threads=args.threads)
    return result.summary()
