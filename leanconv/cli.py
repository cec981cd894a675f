"""The ``leanconv`` command line.

``leanconv ops``     every operator on one layer shape: parameters and MACs, side by side.
``leanconv models``  every zoo model: parameters and MACs at its reference input size.
``leanconv specs``   the conv spec strings the factory, the converter and the zoo accept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leanconv import __version__
from leanconv.cost.counting import count_macs, count_params
from leanconv.models.registry import create_model, list_models, model_entry
from leanconv.ops.create_conv import conv_spec_help, create_conv
from leanconv.ops.deform_conv import DeformConv2d

DEFAULT_SPECS = (
    "standard", "group:g=4,shuffle=1", "dwsep", "hetconv:p=4", "hetconv:p=8",
    "compconv:c0=128", "compconv:c0=64", "dilated:d=2", "deform",
)


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
        params = count_params(module)
        macs = count_macs(module, shape)
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
        model = create_model(name, conv=args.conv) if args.conv else create_model(name)
        macs = count_macs(model, (1, 3, size, size))
        rows.append((name, f"{count_params(model):,}", f"{macs / 1e6:.1f}", f"{size}x{size}"))
    title = "zoo models" + (f" with conv={args.conv!r}" if args.conv else "")
    return "\n".join([title, *_table(("model", "params", "MMACs", "input"), rows)])


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
    commands.add_parser("specs", help="list the conv spec kinds and their parameters")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "ops":
            print(_ops_table(args))
        elif args.command == "models":
            print(_models_table(args))
        elif args.command == "specs":
            print(conv_spec_help())
    except ValueError as error:
        print(f"leanconv {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0
