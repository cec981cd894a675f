"""``leanconv compare``: train the model once per operator (and seed) and put test accuracy
next to measured cost (:func:`leanconv.train.compare.compare`), with named settings.

``quick`` (what ``make demo`` runs): one pass over 30,000 training images per operator,
batch 64, lr 0.05, channels_last; about a minute per operator on a 2-core CPU, and the
standard resnet20_cifar reaches about 86% on the full test set (measured: 86.4%).
``full``: 30 epochs over all 60,000 images (converged accuracy; hours on a CPU).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from leanconv.cli.train import add_train_options, train_config

DEFAULT_CONVS = ("standard", "hetconv:p=4", "compconv:c0=32", "dwsep", "mixconv:k=3.5.7",
                 "group:g=4,shuffle=1")

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"epochs": 1, "subset": 30000, "batch_size": 64, "lr": 0.05,
              "warmup_epochs": 0.1, "channels_last": True},
    "full": {"epochs": 30, "subset": None, "batch_size": 128, "lr": 0.1,
             "warmup_epochs": 1.0, "channels_last": True},
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare", help="train a model once per operator and put test accuracy next to "
                        "measured cost",
        description="Train the model once per conv spec (and seed) on the data, then profile "
                    "each (params, analytic and executed MACs, memory access) and time the "
                    "folded models side by side at batch 1 and 32 (or the models built in "
                    "--runtime at --precision); writes results.csv/.json/.md "
                    "and two plots to the output folder.")
    parser.add_argument("--convs", nargs="+", metavar="SPEC",
                        help="conv specs (default: " + " ".join(DEFAULT_CONVS) + ")")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 0)")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="quick")
    parser.add_argument("--out", help="output folder (default runs/compare-MODEL-PRESET)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--runtime", default="torch",
                        help="measure the latencies in this runtime: torch (default: the "
                             "folded models), onnxruntime or openvino")
    parser.add_argument("--precision", help="the runtime's precision (default: its first): "
                        "torch fp32/bf16, onnxruntime fp32/int8 (calibrated on the data's "
                        "training images), openvino default/fp32/int8")
    add_train_options(parser, skip=("--conv", "--seed"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.train.compare import compare, latency_label, markdown_table

    config = train_config(args, **PRESETS[args.preset], progress=not args.no_progress)
    out = Path(args.out or f"runs/compare-{config.model}-{args.preset}")
    rows = compare(config, args.convs or list(DEFAULT_CONVS), args.seeds or [0], out,
                   runtime=args.runtime, precision=args.precision)
    label = latency_label(args.runtime, args.precision)
    return (f"{markdown_table(rows, label)}\n\nwrote {out}/results.csv, results.json, results.md, "
            f"acc_vs_macs.png, acc_vs_latency.png")
