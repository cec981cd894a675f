"""``leanconv shrink``: make a trained model meet a latency (or MACs) target on this machine,
one operator per layer, chosen from measured latency and measured sensitivity
(:func:`leanconv.shrink`); writes the plan, the model and the report into ``--out``."""

from __future__ import annotations

import argparse
from typing import Any

from leanconv.cli._args import (
    DATA_FLAGS,
    DATA_SWITCHES,
    add_build_options,
    add_data_options,
    add_model_argument,
    build_options,
    fraction,
    given_options,
    input_size,
    positive_float,
    positive_int,
)


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an int >= 0")
    return int(text)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "shrink", help="make a trained model meet a latency or MACs target on this machine, "
                       "losing the least accuracy",
        description="Make a trained MODEL meet one target (--speedup, --latency-ms or "
                    "--macs-ratio) on this machine: one operator per layer, chosen from latency "
                    "measured here (folded, as deployed) and from each choice's measured "
                    "sensitivity on your images; the plan is checked by measurement before "
                    "training, then fitted, fine-tuned with distillation from MODEL and measured "
                    "side by side with it. Writes plan.json, model.pt, report.md, report.json "
                    "and pareto.png into --out. Labels are needed for accuracy only: on images "
                    "that are not labelled with MODEL's classes (images:DIR, synthetic) the "
                    "fine-tuning is distillation alone and the report gives agreement with "
                    "MODEL instead.")
    add_model_argument(parser)
    add_build_options(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--speedup", type=float, help="measured speed-up to reach, > 1 "
                        "(1.5: 1.5x faster than the original, both folded)")
    target.add_argument("--latency-ms", type=positive_float, help="latency to reach (ms)")
    target.add_argument("--macs-ratio", type=fraction, help="share of the original's MACs "
                        "to keep at most, between 0 and 1")
    parser.add_argument("--batch", type=positive_int, default=1,
                        help="batch size the latency is measured at (default 1)")
    parser.add_argument("--threads", type=positive_int,
                        help="CPU threads the latency is measured and training runs with "
                             "(default: torch's, usually the core count)")
    parser.add_argument("--input", type=input_size, help="CxHxW (default: the model's own)")
    parser.add_argument("--channels-last", action="store_true",
                        help="measure in channels_last memory format (PyTorch)")
    parser.add_argument("--runtime", default="torch",
                        help="where the model is deployed and every latency is measured: "
                             "torch (folded PyTorch eager, default), onnxruntime or openvino "
                             "(the 'openvino' extra)")
    parser.add_argument("--precision", nargs="+", metavar="P",
                        help="the model's precision in --runtime, then at most one lower "
                             "precision single layers may take: e.g. 'fp32 int8' "
                             "(onnxruntime), 'default int8' (openvino), 'fp32 bf16' (torch, "
                             "on a CPU with native bf16); or a lower precision alone, e.g. "
                             "'int8': the whole model in it, each layer choosing an operator "
                             "(the speed-up is then over the original in int8); default: the "
                             "runtime's first")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the free baselines (the unchanged model in every "
                             "installed runtime and precision, with its test accuracy)")
    parser.add_argument("--candidates", nargs="+", metavar="SPEC",
                        help="what KxK convs may become (default: hetconv:p=2 hetconv:p=4 "
                             "hetconv:p=8 dwsep group:g=2,shuffle=1 group:g=4,shuffle=1; "
                             "keeping a layer is always a choice)")
    parser.add_argument("--pointwise-candidates", nargs="+", metavar="SPEC",
                        help="what 1x1 convs may become (default: group:g=2,shuffle=1 "
                             "group:g=4,shuffle=1)")
    parser.add_argument("--epochs", type=_non_negative_int, default=1,
                        help="fine-tuning epochs with distillation from MODEL (default 1; 0: "
                             "calibration only)")
    parser.add_argument("--lr", type=positive_float, default=0.01,
                        help="fine-tuning peak learning rate (default 0.01, one-cycle)")
    parser.add_argument("--batch-size", type=positive_int, default=128,
                        help="fine-tuning batch size (default 128)")
    parser.add_argument("--calib-images", type=positive_int, default=1024,
                        help="training images the new weights are fitted on (default 1024)")
    parser.add_argument("--held-out-images", type=positive_int, default=256,
                        help="further training images sensitivity is measured on "
                             "(default 256)")
    parser.add_argument("--no-cache", action="store_true",
                        help="measure every latency entry again (the cache is still written)")
    add_data_options(parser, skip=("--in-chans",))
    parser.add_argument("--out", required=True, help="folder for plan.json, model.pt, "
                        "report.md, report.json and pareto.png")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.search.pipeline import shrink
    from leanconv.search.report import markdown

    options = given_options(args, DATA_FLAGS, DATA_SWITCHES, skip=("--in-chans",))
    data = options.pop("data", None)
    for name in ("candidates", "pointwise_candidates"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    result = shrink(args.model, out=args.out, speedup=args.speedup,
                    latency_ms=args.latency_ms, macs_ratio=args.macs_ratio, data=data,
                    batch=args.batch, threads=args.threads, input_size=args.input,
                    channels_last=args.channels_last, epochs=args.epochs,
                    lr=args.lr, batch_size=args.batch_size, calib_images=args.calib_images,
                    held_out_images=args.held_out_images, use_cache=not args.no_cache,
                    progress=not args.quiet, runtime=args.runtime, precision=args.precision,
                    baselines=not args.no_baselines, **build_options(args), **options)
    return markdown(result) + f"\nwrote {', '.join(result.files.values())}"
