"""``leanconv eval``: test accuracy, loss and per-class accuracy of a training checkpoint, a
converted file or a runtime artifact (``model.onnx``, ``model.xml``;
:func:`leanconv.train.evaluate.evaluate_checkpoint`)."""

from __future__ import annotations

import argparse
from typing import Any

from leanconv.cli._args import (
    DATA_FLAGS,
    DATA_SWITCHES,
    add_data_options,
    given_options,
    positive_int,
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval", help="test accuracy, loss and per-class accuracy of a saved model or a "
                     "deployed .onnx / .xml file",
        description="Evaluate a training checkpoint, a `leanconv convert --out` file or a "
                    "runtime artifact (model.onnx run in onnxruntime, an OpenVINO model.xml "
                    "with its .bin, as leanconv shrink writes them) on the test split of its "
                    "data (default: the data it was trained on, which the file records; an "
                    ".onnx or .xml written elsewhere needs --data). An artifact takes the "
                    "images at the input it was built for. On images not labelled with its "
                    "classes (images:DIR, other classes), a .pt file is compared with the "
                    "saved model it was made from instead (the file it was converted from, or "
                    "its teacher): top-1 agreement and KL divergence; an artifact needs "
                    "labelled images.")
    parser.add_argument("--checkpoint", required=True, help="best.pt / last.pt of a run, a "
                        "leanconv convert --out file, or a model.onnx / model.xml artifact")
    add_data_options(parser)
    parser.add_argument("--batch-size", type=positive_int, default=1000)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.tables import format_table
    from leanconv.train.evaluate import evaluate_checkpoint

    options = given_options(args, DATA_FLAGS, DATA_SWITCHES)
    result = evaluate_checkpoint(args.checkpoint, options.pop("data", None),
                                 batch_size=args.batch_size, **options)
    if "agreement" in result:
        return (f"{args.checkpoint}: no accuracy: {result['no_accuracy']}; against the model it "
                f"was made from, {result['reference']}: top-1 agreement "
                f"{result['agreement']:.4f}, KL {result['kl']:.4f} ({result['images']} images "
                f"of {result['data']})")
    table = format_table(("class", "accuracy"),
                         [(name, f"{acc:.4f}") for name, acc in result["per_class"].items()])
    where = f" ({result['runtime']} {result['precision']})" if "runtime" in result else ""
    return (f"{args.checkpoint}{where}: test accuracy {result['acc']:.4f}, loss "
            f"{result['loss']:.4f} ({result['images']} images of {result['data']})\n{table}")
