"""``leanconv cost``: one model's cost per layer (:func:`leanconv.profile`), or the model
with several conv specs side by side (:func:`leanconv.bench.compare_convs`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from leanconv.cli._args import (
    add_build_options,
    add_input_argument,
    add_model_argument,
    build_options,
    positive_int,
)

FORMATS = ("table", "csv", "json", "md")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cost", help="a model's cost per layer, or several conv specs compared in one model",
        description="Parameters, analytic and executed MACs, FLOPs and memory access of MODEL, "
                    "per layer, with measured latency of the folded model (--latency); or one "
                    "row per conv spec (--compare SPEC ...) with ratios to the first.")
    add_model_argument(parser)
    add_build_options(parser, in_chans=False)
    parser.add_argument("--conv", help="conv spec for the spatial convs (zoo: as "
                        "create_model(conv=); any other model: converted)")
    parser.add_argument("--compare", nargs="+", metavar="SPEC",
                        help="compare these conv specs ('standard' = unchanged), one row each")
    add_input_argument(parser, "of the profiled input")
    parser.add_argument("--batch", type=positive_int, default=1)
    parser.add_argument("--latency", action="store_true", help="measure latency (real tensors) "
                        "of the model as deployed: folded (leanconv.fold) first")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for timing")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--depth", type=int, help="module depth of the rows (default: layers)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table, csv (raw numbers), json or md")
    parser.add_argument("--out", help="write to this file (atomically) instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    if args.conv and args.compare:
        raise ValueError("give either --conv or --compare, not both")
    if args.num_classes and args.compare:
        raise ValueError(f"--num-classes {args.num_classes} applies to one model's profile; "
                         f"--compare builds each model as it is")
    text = _compare(args) if args.compare else _profile(args)
    if args.out:
        from leanconv.io import atomic_write_text

        atomic_write_text(args.out, text + "\n")
        return f"wrote {args.out}"
    return text


def _profile(args: argparse.Namespace) -> str:
    from leanconv.converter import load_with_conv
    from leanconv.cost.profile import profile

    model, info = load_with_conv(args.model, args.conv, **build_options(args))
    shape = (args.batch, *args.input) if args.input else info.input_shape(args.batch)
    note = ""
    if args.latency:
        from leanconv.deploy import fold

        model = fold(model.to(args.device), shape, channels_last=args.channels_last,
                     threads=args.threads)[0]
        note = "latency of the folded model (BatchNorm folded, fastest forms)"
    result = profile(model, shape, latency=args.latency, device=args.device,
                     channels_last=args.channels_last, threads=args.threads)
    if args.format == "json":
        return json.dumps({**result.to_dict(), **({"note": note} if note else {})}, indent=2,
                          default=list)
    if args.format == "csv":
        return result.to_csv_text(args.depth).rstrip("\n")
    text = result.to_markdown(args.depth) if args.format == "md" else result.table(args.depth)
    return f"{note}\n{text}" if note else text


def _compare(args: argparse.Namespace) -> str:
    from leanconv.bench.compare import COMPARED_KEYS, compare_convs
    from leanconv.deploy.latency import FOLDED_NOTE
    from leanconv.tables import format_table, records_table

    shape = (args.batch, *args.input) if args.input else None
    records = compare_convs(args.model, args.compare, shape,
                            batch=1 if args.input else args.batch, latency=args.latency,
                            device=args.device, channels_last=args.channels_last,
                            threads=args.threads)
    if args.format == "json":
        return json.dumps(records, indent=2)
    keys = [*COMPARED_KEYS, *(["latency_ms"] if args.latency else [])]
    if args.format == "csv":
        return records_table(records, ["conv", *keys, *(f"{k}_vs_first" for k in keys)])
    header = ["conv", *keys, *(f"{k} vs first" for k in keys)]
    note = f"{FOLDED_NOTE}\n" if args.latency else ""
    rows = [[r["conv"], *(f"{r[k]:,}" if isinstance(r[k], int) else f"{r[k]:.3f}" for k in keys),
             *(None if r[f"{k}_vs_first"] is None else f"{r[f'{k}_vs_first']:.3f}"
               for k in keys)] for r in records]
    return note + format_table(header, rows, "md" if args.format == "md" else "text")
