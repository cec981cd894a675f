"""The ``leanconv`` command line.

``leanconv ops``     every operator on one layer shape: parameters and MACs, side by side.
``leanconv models``  every zoo model: parameters and MACs at its reference input size.
``leanconv cost``    one model's cost per layer, or several operators compared in one model.
``leanconv convert`` swap a model's convs for an operator and report what changed.
``leanconv train``   train one zoo model with one operator on Fashion-MNIST (or DDP).
``leanconv eval``    test accuracy, loss and per-class accuracy of a checkpoint.
``leanconv compare`` train once per operator and put accuracy next to measured cost.
``leanconv export``  fold a model and export it to ONNX, verified in onnxruntime.
``leanconv bench``   operators vs the kernels they replace, models vs torchvision / timm.
``leanconv specs``   the conv spec strings the factory, the converter and the zoo accept.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from leanconv import __version__
from leanconv.convert import SAVE_FORMAT, ConversionPolicy, convert, load_converted, save_converted
from leanconv.cost.latency import measure_side_by_side
from leanconv.cost.profile import profile
from leanconv.deploy.onnx_export import DEFAULT_OPSET, ExportError, export_onnx
from leanconv.io import atomic_write_text, safe_torch_load
from leanconv.models.registry import create_model, list_models, model_entry
from leanconv.ops.create_conv import conv_spec_help, create_conv
from leanconv.ops.deform_conv import DeformConv2d
from leanconv.references import build_model, model_from_checkpoint
from leanconv.train.compare import compare, markdown_table
from leanconv.train.config import TrainConfig
from leanconv.train.distributed import launch
from leanconv.train.evaluate import evaluate_checkpoint
from leanconv.train.presets import DEFAULT_CONVS, PRESETS
from leanconv.train.trainer import train

TRAINED_INPUT = (1, 28, 28)  # what `leanconv train` models take: Fashion-MNIST images
DEFAULT_SPECS = (
    "standard", "group:g=4,shuffle=1", "dwsep", "hetconv:p=4", "hetconv:p=8",
    "compconv:c0=128", "compconv:c0=64", "dilated:d=2", "deform",
)


def _input_size(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not CxHxW with positive ints, "
                                         f"e.g. 3x224x224")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int >= 1")
    return value


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]


def _ops_table(args: argparse.Namespace) -> str:
    shape = (1, args.in_channels, args.size, args.size)
    rows, baseline, notes = [], None, []
    for spec in args.spec or DEFAULT_SPECS:
        module = create_conv(spec, args.in_channels, args.out_channels, args.kernel_size,
                             args.stride).eval()
        totals = profile(module, shape).totals
        params, macs = totals["params"], totals["macs_executed"]
        baseline = baseline or macs
        analytic = ""
        if hasattr(module, "macs_per_pixel"):
            pixels = (args.size + args.stride - 1) // args.stride
            analytic = f"{module.macs_per_pixel() * pixels * pixels / 1e6:.2f}"
        if isinstance(module, DeformConv2d):
            notes.append(f"{spec}: torch's flop counter does not see deform_conv2d itself")
        rows.append((spec, type(module).__name__, f"{params:,}", f"{macs / 1e6:.2f}", analytic,
                     f"{macs / baseline:.3f}"))
    header = ("spec", "module", "params", "MMACs (counted)", "MMACs (analytic)", "vs first")
    lines = [f"{args.in_channels}->{args.out_channels} channels, {args.kernel_size}x"
             f"{args.kernel_size}, stride {args.stride}, input 1x{args.in_channels}x{args.size}"
             f"x{args.size}", *_table(header, rows)]
    return "\n".join(lines + [f"note: {n}" for n in notes])


def _models_table(args: argparse.Namespace) -> str:
    names = list_models(args.pattern)
    if not names:
        raise ValueError(f"no model matches --pattern {args.pattern!r}; models: "
                         f"{', '.join(list_models())}")
    rows = []
    for name in names:
        size = model_entry(name).input_size
        totals = profile(create_model(name, conv=args.conv), (1, 3, size, size)).totals
        rows.append((name, f"{totals['params']:,}", f"{totals['macs_analytic'] / 1e6:.1f}",
                     f"{totals['macs_executed'] / 1e6:.1f}",
                     f"{totals['memory_access'] / 1e6:.1f}", f"{size}x{size}"))
    title = "zoo models" + (f" with conv={args.conv!r}" if args.conv else "")
    header = ("model", "params", "MMACs analytic", "MMACs executed", "M elements moved",
              "input")
    return "\n".join([title, *_table(header, rows)])


def _cost_input(args: argparse.Namespace) -> tuple[int, int, int, int]:
    size = model_entry(args.model).input_size
    c, h, w = args.input or (3, size, size)
    return args.batch, c, h, w


def _cost_compare(args: argparse.Namespace) -> tuple[list[str], list[list[str]], list[dict]]:
    shape = _cost_input(args)
    models = {spec: create_model(args.model, in_chans=shape[1],
                                 conv=None if spec == "standard" else spec)
              for spec in args.compare}
    records = [{"conv": spec, **profile(model, shape).totals} for spec, model in models.items()]
    if args.latency:  # interleaved rounds: the ratios stay honest on a noisy machine
        timed = measure_side_by_side(models, shape, args.device,
                                     channels_last=args.channels_last,
                                     threads=args.threads or torch.get_num_threads())
        for record in records:
            record["latency_ms"], record["latency_iqr_ms"] = timed[record["conv"]]
    keys = ["params", "macs_analytic", "macs_executed", "memory_access"]
    keys += ["latency_ms"] if args.latency else []
    header = ["conv", *keys, *(f"{k} vs first" for k in keys)]
    rows = []
    for r in records:
        cells = [r["conv"]] + [f"{r[k]:,}" if isinstance(r[k], int) else f"{r[k]:.3f}"
                               for k in keys]
        cells += [f"{r[k] / records[0][k]:.3f}" if records[0][k] else "-" for k in keys]
        rows.append(cells)
    return header, rows, records


def _cost(args: argparse.Namespace) -> str:
    model_entry(args.model)  # unknown names fail first, with close matches
    if args.compare:
        header, rows, records = _cost_compare(args)
        if args.format == "json":
            return json.dumps(records, indent=2)
        if args.format == "md":
            return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                              *("| " + " | ".join(r) + " |" for r in rows)])
        if args.format == "csv":
            return "\n".join(",".join(f'"{c}"' for c in row) for row in [header, *rows])
        return "\n".join(_table(header, rows))
    shape = _cost_input(args)
    model = create_model(args.model, in_chans=shape[1], conv=args.conv)
    result = profile(model, shape, latency=args.latency, device=args.device,
                     channels_last=args.channels_last, threads=args.threads)
    if args.format == "json":
        return json.dumps(result.to_dict(), indent=2, default=list)
    if args.format == "md":
        return result.to_markdown(args.depth)
    if args.format == "csv":
        buffer = io.StringIO()
        result.write_csv(buffer, args.depth)
        return buffer.getvalue()
    return result.table(args.depth)


def _convert(args: argparse.Namespace) -> str:
    if args.model.endswith(".pt"):  # a trained model: its own input
        model, _ = model_from_checkpoint(args.model)
        default = TRAINED_INPUT
    else:
        model = build_model(args.model)
        size = model_entry(args.model).input_size if ":" not in args.model else 224
        default = (3, size, size)
    c, h, w = args.input or default
    policy = ConversionPolicy(tuple(args.include), tuple(args.exclude), args.min_channels,
                              keep_stem=not args.convert_stem)
    converted, report = convert(model, args.to, policy=policy, input_shape=(1, c, h, w))
    text = report.table()
    if args.out:
        save_converted(args.out, converted, args.model, args.to, policy)
        text += f"\nsaved {args.out} (load it with leanconv.convert.load_converted)"
    return text


def _checkpoint_model(path: str, expected: str | None) -> tuple[torch.nn.Module,
                                                                 tuple[int, int, int]]:
    """The model a training checkpoint or a ``leanconv convert --out`` file holds, and its
    default input (C, H, W); ``expected``: the model name it must hold."""
    payload = safe_torch_load(path, "--checkpoint")
    if isinstance(payload, dict) and payload.get("format") == SAVE_FORMAT:
        built_from, model = payload["model"], load_converted(path)
        size = model_entry(built_from).input_size if ":" not in built_from else 224
        default = (3, size, size)
    else:
        model, config = model_from_checkpoint(path)
        built_from, default = config.model, TRAINED_INPUT
    if expected is not None and built_from != expected:
        raise ValueError(f"--checkpoint {path!r} holds {built_from!r}, not {expected!r}")
    return model, default


def _export_model(args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """The model to export and its default input (C, H, W)."""
    if args.checkpoint or args.model.endswith(".pt"):
        if args.conv:
            raise ValueError("--conv is taken from the checkpoint; drop it")
        if args.checkpoint:
            return _checkpoint_model(args.checkpoint, args.model)
        return _checkpoint_model(args.model, None)
    if ":" in args.model:  # torchvision / timm: convert their convs
        model = build_model(args.model)
        if args.conv:
            model, _ = convert(model, args.conv, input_shape=None)
        return model, (3, 224, 224)
    size = model_entry(args.model).input_size
    return create_model(args.model, conv=args.conv), (3, size, size)


def _export(args: argparse.Namespace) -> str:
    model, default = _export_model(args)
    c, h, w = args.input or default
    result = export_onnx(model, args.onnx, (args.batch, c, h, w), opset=args.opset,
                         dynamic_batch=args.dynamic_batch, fold_first=not args.no_fold,
                         threads=args.threads)
    return result.summary()


def _cell(row: dict[str, object], key: str, suffix: str = "") -> str:
    value = row.get(key)
    return "-" if value is None else f"{value}{suffix}"


def _bench(args: argparse.Namespace) -> str:
    from leanconv.bench import bench_models, bench_ops, machine_info, measure_ceilings

    threads = args.threads or torch.get_num_threads()
    record: dict[str, object] = {"machine": machine_info(threads)}
    if args.what == "ops":
        ceilings = measure_ceilings(threads)
        rows = bench_ops(ceilings, threads=threads, batches=tuple(args.batches or (1, 8, 32)),
                         layouts=tuple(args.layouts), modes=tuple(args.modes),
                         rounds=args.rounds)
        record["ceilings"] = {"gflops": round(ceilings.gflops, 1),
                              "gbps": round(ceilings.gbps, 2)}
        header = ["case", "batch", "layout", "mode", "ms", "speedup", "FLOPs red.",
                  "realization", "bound ms", "of bound"]
        table = [[r["case"], r["batch"], r["layout"], r["mode"], r["ms"], _cell(r, "speedup", "x"),
                  _cell(r, "flops_reduction", "x"), _cell(r, "realization"), r["bound_ms"],
                  r["of_bound"]] for r in rows]
        lines = [f"ceilings: {ceilings.gflops:.1f} GFLOP/s (fp32 matmul), "
                 f"{ceilings.gbps:.2f} GB/s (copy), {threads} threads"]
    else:
        rows = bench_models(threads=threads, batches=tuple(args.batches or (1, 32)),
                            layouts=tuple(args.layouts), rounds=args.rounds,
                            models=tuple(args.models) if args.models else None)
        header = ["model", "conv", "reference", "batch", "layout", "leanconv ms",
                  "reference ms", "ratio"]
        table = [[r["model"], r["conv"], r["reference"], r["batch"], r["layout"], r["ms"],
                  r["reference_ms"], r["ratio"]] for r in rows]
        lines = []
    record["results"] = rows
    out = args.out or f"benchmarks/results/bench_{args.what}.json"
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    return "\n".join([*lines, *_table(header, table), f"wrote {out}"])


TRAIN_FLAGS = {  # flag: (TrainConfig field, type, help)
    "--model": ("model", str, "zoo model (default resnet20_cifar)"),
    "--conv": ("conv", str, "conv spec for the spatial convs (default: standard)"),
    "--epochs": ("epochs", _positive_int, "epochs"),
    "--batch-size": ("batch_size", _positive_int, "batch size per process"),
    "--lr": ("lr", float, "peak learning rate"),
    "--seed": ("seed", int, "random seed"),
    "--schedule": ("schedule", str, "cosine or onecycle"),
    "--warmup-epochs": ("warmup_epochs", float, "linear warm-up length in epochs"),
    "--weight-decay": ("weight_decay", float, "weight decay (not on norms and biases)"),
    "--label-smoothing": ("label_smoothing", float, "label smoothing"),
    "--device": ("device", str, "cpu or cuda"),
    "--threads": ("threads", _positive_int, "CPU threads"),
    "--max-minutes": ("max_minutes", float, "stop training after this many minutes"),
    "--subset": ("subset", _positive_int, "train on the first N images only"),
    "--data": ("data", str, "fashion-mnist (default) or synthetic"),
    "--data-dir": ("data_dir", str, "folder with the Fashion-MNIST *-ubyte.gz files"),
}
TRAIN_SWITCHES = {"--amp": "amp", "--channels-last": "channels_last", "--ema": "ema",
                  "--deterministic": "deterministic"}


def _add_train_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    for flag, (_, kind, text) in TRAIN_FLAGS.items():
        if flag not in skip:
            parser.add_argument(flag, type=kind, default=None, help=text)
    for flag in TRAIN_SWITCHES:
        parser.add_argument(flag, action="store_true", default=None)


def _train_config(args: argparse.Namespace, **base: object) -> TrainConfig:
    values = dict(base)
    for flag, (field, _, _) in TRAIN_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None:
            values[field] = value
    for flag, field in TRAIN_SWITCHES.items():
        if getattr(args, flag[2:].replace("-", "_"), None):
            values[field] = True
    return TrainConfig(**values)


def _train(args: argparse.Namespace, argv: Sequence[str]) -> str:
    if args.nproc and args.nproc > 1:
        forwarded, skip = [], False
        for arg in argv:  # drop "--nproc N" / "--nproc=N"; torchrun sets the world size
            if skip or arg.startswith("--nproc="):
                skip = False
                continue
            skip = arg == "--nproc"
            if not skip:
                forwarded.append(arg)
        code = launch(args.nproc, forwarded)
        if code:
            raise ValueError(f"the distributed run failed (torchrun exit code {code})")
        return "distributed run finished"
    config = _train_config(args, progress=not args.no_progress, resume=args.resume)
    if args.out is None:
        args.out = f"runs/{config.model}-{(config.conv or 'standard').replace(':', '_')}"
    config = TrainConfig.from_dict({**config.to_dict(), "out": args.out})
    summary = train(config)
    return json.dumps({k: v for k, v in summary.items() if k != "per_class_acc"}, indent=2)


def _eval(args: argparse.Namespace) -> str:
    result = evaluate_checkpoint(args.checkpoint, args.data, args.data_dir, args.batch_size)
    lines = [f"{args.checkpoint}: test accuracy {result['acc']:.4f}, loss {result['loss']:.4f} "
             f"({result['images']} images)", *_table(
                 ("class", "accuracy"),
                 [(name, f"{acc:.4f}") for name, acc in result["per_class"].items()])]
    return "\n".join(lines)


def _compare_operators(args: argparse.Namespace) -> str:
    base = {**PRESETS[args.preset], "progress": not args.no_progress}
    config = _train_config(args, **base)
    out = Path(args.out or f"runs/compare-{config.model}-{args.preset}")
    rows = compare(config, args.convs or list(DEFAULT_CONVS), args.seeds or [0], out)
    return (f"{markdown_table(rows)}\n\nwrote {out}/results.csv, results.json, results.md, "
            f"acc_vs_macs.png, acc_vs_latency.png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leanconv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"leanconv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    ops = commands.add_parser("ops", help="compare every operator on one layer shape")
    ops.add_argument("--in-channels", type=_positive_int, default=256)
    ops.add_argument("--out-channels", type=_positive_int, default=256)
    ops.add_argument("--kernel-size", type=_positive_int, default=3)
    ops.add_argument("--stride", type=_positive_int, default=1)
    ops.add_argument("--size", type=_positive_int, default=28, help="input height and width")
    ops.add_argument("--spec", action="append", help="conv spec (repeatable); default: a set")
    models = commands.add_parser("models", help="every zoo model with its params and MACs")
    models.add_argument("--pattern", default="*", help="glob on model names, e.g. 'resnet*'")
    models.add_argument("--conv", help="conv spec replacing the spatial convs, e.g. hetconv:p=4")
    cost = commands.add_parser("cost", help="per-layer cost of a model, or operators compared")
    cost.add_argument("model", help="a zoo model name (leanconv models lists them)")
    cost.add_argument("--conv", help="conv spec for the spatial convs, as create_model(conv=)")
    cost.add_argument("--compare", nargs="+", metavar="SPEC",
                      help="compare these conv specs ('standard' = unchanged), one row each")
    cost.add_argument("--input", type=_input_size, help="CxHxW; default 3x224x224 (CIFAR "
                      "models 3x32x32)")
    cost.add_argument("--batch", type=_positive_int, default=1)
    cost.add_argument("--latency", action="store_true", help="measure latency (real tensors)")
    cost.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    cost.add_argument("--threads", type=_positive_int, help="CPU threads for timing")
    cost.add_argument("--channels-last", action="store_true")
    cost.add_argument("--depth", type=int, help="module depth of the rows (default: layers)")
    cost.add_argument("--format", choices=("table", "csv", "json", "md"), default="table")
    cost.add_argument("--out", help="write to this file (atomically) instead of stdout")
    conv = commands.add_parser("convert", help="swap a model's convs for an operator")
    conv.add_argument("model", help="a zoo name, torchvision:NAME, timm:NAME or a training "
                      "checkpoint (runs/NAME/best.pt)")
    conv.add_argument("--to", required=True, help="conv spec, e.g. hetconv:p=4 or standard")
    conv.add_argument("--include", nargs="+", default=["*"], metavar="GLOB")
    conv.add_argument("--exclude", nargs="+", default=[], metavar="GLOB")
    conv.add_argument("--min-channels", type=_positive_int, default=1)
    conv.add_argument("--convert-stem", action="store_true", help="also convert the stem")
    conv.add_argument("--input", type=_input_size, help="CxHxW for the MAC columns "
                      "(default 3x224x224; CIFAR zoo models 3x32x32)")
    conv.add_argument("--out", help="save state_dict + rebuild spec here (torch.save)")
    trainer = commands.add_parser("train", help="train a zoo model on Fashion-MNIST")
    _add_train_options(trainer)
    trainer.add_argument("--out", help="run folder (default runs/MODEL-CONV)")
    trainer.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    trainer.add_argument("--nproc", type=_positive_int, help="launch N processes with torchrun")
    trainer.add_argument("--no-progress", action="store_true")
    evaluator = commands.add_parser("eval", help="evaluate a checkpoint on the test set")
    evaluator.add_argument("--checkpoint", required=True, help="best.pt / last.pt of a run")
    evaluator.add_argument("--data", choices=("fashion-mnist", "synthetic"))
    evaluator.add_argument("--data-dir")
    evaluator.add_argument("--batch-size", type=_positive_int, default=1000)
    comparer = commands.add_parser("compare", help="train once per operator, compare costs")
    comparer.add_argument("--convs", nargs="+", metavar="SPEC", help="conv specs (default: "
                          + " ".join(DEFAULT_CONVS) + ")")
    comparer.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 0)")
    comparer.add_argument("--preset", choices=tuple(PRESETS), default="quick")
    comparer.add_argument("--out", help="output folder (default runs/compare-MODEL-PRESET)")
    comparer.add_argument("--no-progress", action="store_true")
    _add_train_options(comparer, skip=("--conv", "--seed"))
    exporter = commands.add_parser("export", help="fold a model and export it to ONNX, "
                                   "verified against PyTorch in onnxruntime")
    exporter.add_argument("model", help="a zoo name, torchvision:NAME, timm:NAME or a training "
                          "checkpoint (.pt)")
    exporter.add_argument("--conv", help="conv spec for the spatial convs (torchvision/timm: "
                          "converted), e.g. hetconv:p=4")
    exporter.add_argument("--checkpoint", help="weights: a training checkpoint of MODEL or a "
                          "leanconv convert --out file")
    exporter.add_argument("--onnx", required=True, help="output file, e.g. model.onnx")
    exporter.add_argument("--opset", type=_positive_int, default=DEFAULT_OPSET,
                          help=f"ONNX opset (default {DEFAULT_OPSET}; DeformConv needs 19)")
    exporter.add_argument("--dynamic-batch", action="store_true", help="leave the batch free")
    exporter.add_argument("--input", type=_input_size, help="CxHxW (default: the model's)")
    exporter.add_argument("--batch", type=_positive_int, default=1)
    exporter.add_argument("--no-fold", action="store_true", help="export without folding")
    exporter.add_argument("--threads", type=_positive_int, help="onnxruntime threads")
    bench = commands.add_parser("bench", help="time operators / models side by side "
                                "(a benchmark: minutes)")
    bench.add_argument("what", choices=("ops", "models"))
    bench.add_argument("--threads", type=_positive_int, help="CPU threads (default: torch's)")
    bench.add_argument("--batches", type=_positive_int, nargs="+",
                       help="batch sizes (default: ops 1 8 32, models 1 32)")
    bench.add_argument("--layouts", nargs="+", choices=("nchw", "channels_last"),
                       default=["nchw", "channels_last"])
    bench.add_argument("--modes", nargs="+", choices=("inference", "training"),
                       default=["inference", "training"], help="ops only")
    bench.add_argument("--rounds", type=_positive_int, default=3)
    bench.add_argument("--models", nargs="+", metavar="NAME", help="models only: these cases")
    bench.add_argument("--out", help="JSON file (default benchmarks/results/bench_WHAT.json)")
    commands.add_parser("specs", help="list the conv spec kinds and their parameters")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "ops":
            print(_ops_table(args))
        elif args.command == "models":
            print(_models_table(args))
        elif args.command == "cost":
            if args.conv and args.compare:
                raise ValueError("give either --conv or --compare, not both")
            text = _cost(args)
            if args.out:
                atomic_write_text(args.out, text + "\n")
                print(f"wrote {args.out}")
            else:
                print(text)
        elif args.command == "convert":
            print(_convert(args))
        elif args.command == "train":
            print(_train(args, argv))
        elif args.command == "eval":
            print(_eval(args))
        elif args.command == "compare":
            print(_compare_operators(args))
        elif args.command == "bench":
            print(_bench(args))
        elif args.command == "export":
            print(_export(args))
        elif args.command == "specs":
            print(conv_spec_help())
    except (ValueError, ExportError) as error:
        print(f"leanconv {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
