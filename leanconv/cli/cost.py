"""``leanconv cost``: one model's cost per layer (:func:`leanconv.profile`), or the model
with several conv specs side by side (:func:`leanconv.bench.compare_convs`); the latency
folded in PyTorch fp32, or in another runtime and precision (``--runtime``, ``--precision``:
:mod:`leanconv.runtimes`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from leanconv.cli._args import (
    DATA_FLAGS,
    add_build_options,
    add_flags,
    add_input_argument,
    add_model_argument,
    build_options,
    given_options,
    positive_int,
    square_side,
)

FORMATS = ("table", "csv", "json", "md")
CALIBRATION_FLAGS = {flag: DATA_FLAGS[flag] for flag in ("--data", "--data-dir")}
CALIB_IMAGES = 64  # int8's calibration images: enough for its ranges, and latency


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
    parser.add_argument("--runtime", help="measure the latency in this runtime: torch "
                        "(default: the folded model), onnxruntime or openvino; the whole "
                        "model only (the per-layer latency is PyTorch's)")
    parser.add_argument("--precision", help="the runtime's precision (default: its first): "
                        "torch fp32/bf16, onnxruntime fp32/int8, openvino default/fp32/int8")
    add_flags(parser, CALIBRATION_FLAGS, {})
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--depth", type=int, help="module depth of the rows (default: layers)")
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table, csv (raw numbers), json or md")
    parser.add_argument("--out", help="write to this file (atomically) instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> str:
    from leanconv.bench.compare import latency_runtime

    args.deployed = latency_runtime("cost", args.runtime or "torch", args.precision,
                                    latency=args.latency, device=args.device)
    data_given = given_options(args, CALIBRATION_FLAGS, {})
    if data_given and (args.deployed is None or args.deployed[1] != "int8"):
        raise ValueError(f"--{next(iter(data_given)).replace('_', '-')} gives the images int8 "
                         f"is calibrated on; it applies with --latency --precision int8 only")
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
    original = model
    if args.latency:
        from leanconv.deploy import fold

        model = fold(model.to(args.device), shape, channels_last=args.channels_last,
                     threads=args.threads)[0]
        note = "latency of the folded model (BatchNorm folded, fastest forms)"
    in_runtime = args.deployed is not None
    result = profile(model, shape, latency=args.latency and not in_runtime, device=args.device,
                     channels_last=args.channels_last, threads=args.threads)
    if in_runtime:
        timed, note = _runtime_latency(args, {"model": original}, shape, info)
        total = result.module("")
        total["latency_ms"], total["latency_iqr_ms"] = timed["model"]
        note += "; the per-layer latency is PyTorch's only: here the whole model's (TOTAL)"
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
    deployed, calibration, note = {}, None, FOLDED_NOTE
    if args.deployed is not None:
        from leanconv.loading import load_model

        in_chans = {"in_chans": args.input[0]} if args.input else {}
        info = load_model(args.model, **in_chans)[1]  # the input and data of the model
        calibration, note = _calibration(args, shape or info.input_shape(args.batch), info)
        note = f"latency in {' '.join(args.deployed)}, side by side{note}"
        deployed = {"runtime": args.deployed[0], "precision": args.deployed[1]}
    records = compare_convs(args.model, args.compare, shape,
                            batch=1 if args.input else args.batch, latency=args.latency,
                            device=args.device, channels_last=args.channels_last,
                            threads=args.threads, calibration=calibration, **deployed)
    if args.format == "json":
        return json.dumps(records, indent=2)
    keys = [*COMPARED_KEYS, *(["latency_ms"] if args.latency else [])]
    if args.format == "csv":
        return records_table(records, ["conv", *keys, *(f"{k}_vs_first" for k in keys)])
    header = ["conv", *keys, *(f"{k} vs first" for k in keys)]
    note = f"{note}\n" if args.latency else ""
    rows = [[r["conv"], *(f"{r[k]:,}" if isinstance(r[k], int) else f"{r[k]:.3f}" for k in keys),
             *(None if r[f"{k}_vs_first"] is None else f"{r[f'{k}_vs_first']:.3f}"
               for k in keys)] for r in records]
    return note + format_table(header, rows, "md" if args.format == "md" else "text")


def _calibration(args: argparse.Namespace, shape: tuple[int, ...], info: Any
                 ) -> tuple[Any, str]:
    """``(images, note)``: what int8 is calibrated on (None for another precision): the
    first :data:`CALIB_IMAGES` training images of ``--data`` as the model sees them, or,
    without ``--data``, random normal images (right for int8's latency, which does not
    depend on the values; not for its accuracy), said in the note."""
    if args.deployed is None or args.deployed[1] != "int8":
        return None, ""
    import torch

    options = given_options(args, CALIBRATION_FLAGS, {})
    data = options.pop("data", None)
    if data is None and not options:
        return (torch.randn((CALIB_IMAGES, *shape[1:])),
                f" (int8 calibrated on {CALIB_IMAGES} random normal images: give --data for "
                f"the model's own; the latency does not depend on them)")
    from leanconv.data.load import dataset_for_model

    side = square_side(tuple(shape[1:]), "--input")
    dataset = dataset_for_model(info, data, need_labels=False, image_size=side,
                                in_chans=shape[1], **options)
    return (dataset.model_inputs(CALIB_IMAGES),
            f" (int8 calibrated on {CALIB_IMAGES} training images of {dataset.spec})")


def _runtime_latency(args: argparse.Namespace, models: dict[str, Any], shape: tuple[int, ...],
                     info: Any) -> tuple[Any, str]:
    """``models`` built in ``--runtime`` at ``--precision`` and timed side by side, and the
    note that says so."""
    import torch

    from leanconv.runtimes.timing import runtime_side_by_side

    calibration, note = _calibration(args, shape, info)
    runtime, precision = args.deployed
    timed = runtime_side_by_side(models, shape, runtime=runtime, precision=precision,
                                 threads=args.threads or torch.get_num_threads(),
                                 calibration=calibration, channels_last=args.channels_last,
                                 owner="cost")
    return timed, f"latency of the model in {runtime} {precision}{note}"
