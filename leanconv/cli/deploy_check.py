"""``leanconv deploy-check``: what a trained model gets without changing the network, the
free baselines (:func:`leanconv.bench.baselines.free_baselines`): the unchanged model in every
installed runtime and precision, timed side by side, with its test accuracy."""

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
    given_options,
    input_size,
    positive_int,
    square_side,
)

MAX_DROP = 0.003  # the fastest baseline named is within 0.3 points of the original's accuracy


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deploy-check", help="what you get without changing the network: the model in every "
                             "installed runtime and precision, timed, with its accuracy",
        description="What you get without changing the network: MODEL, unchanged, in every "
                    "installed runtime (PyTorch folded, onnxruntime, OpenVINO) and every "
                    "precision it runs on this CPU (fp32, bf16, OpenVINO's default, int8 "
                    "calibrated on --calib-images training images), all timed side by side "
                    "in one measurement (they take turns, so load on the machine hits them "
                    "alike) with the speed-up over PyTorch fp32, the test accuracy (on images "
                    "labelled with MODEL's classes) and the top-1 agreement with PyTorch fp32. "
                    "Names the fastest within 0.3 points of the original's accuracy: the "
                    "baseline any change to the network (leanconv shrink) has to beat.")
    add_model_argument(parser)
    add_build_options(parser)
    parser.add_argument("--batch", type=positive_int, default=1,
                        help="batch size the latency is measured at (default 1)")
    parser.add_argument("--threads", type=positive_int,
                        help="CPU threads every runtime runs with (default: torch's, usually "
                             "the core count)")
    parser.add_argument("--input", type=input_size, help="CxHxW (default: the model's own)")
    parser.add_argument("--runtime", nargs="+", metavar="R",
                        help="only these runtimes: torch, onnxruntime, openvino (default: all "
                             "installed; PyTorch fp32, the reference, is always measured)")
    parser.add_argument("--calib-images", type=positive_int, default=512,
                        help="training images int8 is calibrated on (default 512)")
    add_data_options(parser, skip=("--in-chans",))
    parser.add_argument("--json", help="also write the result to this JSON file (atomically)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def machine_line(threads: int) -> str:
    """This machine in one line: CPU, cores, threads, and the versions that run the model."""
    import importlib.metadata

    from leanconv.machine import machine_info

    info = machine_info(threads)
    versions = [f"torch {info['torch']}"]
    for package in ("onnxruntime", "openvino", "nncf"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return (f"machine: {info['cpu']}, {info['cores']} cores, {threads} "
            f"thread{'s' if threads != 1 else ''}; {', '.join(versions)}")


def run(args: argparse.Namespace) -> str:
    import json

    import torch

    from leanconv.bench.baselines import free_baselines
    from leanconv.cost.latency import torch_threads
    from leanconv.data.load import dataset_for_model, labels_apply
    from leanconv.io import atomic_write_text
    from leanconv.loading import load_model
    from leanconv.runtimes import get_runtime

    for name in args.runtime or ():  # before any work: each known and installed
        get_runtime("deploy-check", name)
    options = given_options(args, DATA_FLAGS, DATA_SWITCHES, skip=("--in-chans",))
    data = options.pop("data", None)
    if args.input is not None:
        options.setdefault("image_size", square_side(args.input, "--input"))
    threads = args.threads or torch.get_num_threads()
    model, info = load_model(args.model, **build_options(args))
    shape = (args.batch, *(args.input or info.input_shape(1)[1:]))
    dataset = dataset_for_model(info, data, need_labels=False, **options)
    no_accuracy = labels_apply(info, dataset)
    with torch_threads(threads):
        calibration = dataset.model_inputs(args.calib_images)
    say = (lambda _: None) if args.quiet else (lambda line: print(line, flush=True))
    free = free_baselines(model, shape, threads=threads, calibration=calibration,
                          dataset=dataset, runtimes=args.runtime, progress=say)
    key, reference = free.judged_by()
    best = free.best(max_drop=MAX_DROP)
    judged = (f"the original's accuracy ({100 * reference:.2f}%)" if key == "accuracy" else
              f"full agreement with the original (no accuracy: {no_accuracy})")
    lines = [machine_line(threads),
             f"free baselines of {args.model} at {'x'.join(map(str, shape))} (the network "
             f"unchanged; {len(dataset.test)} test images of {dataset.spec}; speed-ups are "
             f"paired ratios from one side-by-side measurement):",
             free.markdown(),
             f"fastest within {100 * MAX_DROP:.1f} points of {judged}: {best.name}, "
             f"{best.speedup:.2f}x over torch fp32 ({best.ms:.3f} ms)"]
    if args.json:
        from leanconv.machine import machine_info

        record = {"model": args.model, "machine": machine_info(threads), "data": dataset.spec,
                  "no_accuracy": no_accuracy, "max_drop": MAX_DROP, "best": best.name,
                  **free.to_json()}
        atomic_write_text(args.json, json.dumps(record, indent=2) + "\n")
        lines.append(f"wrote {args.json}")
    return "\n".join(lines)
