"""Arguments shared by the commands: their types (argparse calls them on the text of one
argument and turns an ``ArgumentTypeError`` into ``leanconv CMD: error: ...`` with exit code 2)
and the declarations several commands make alike."""

from __future__ import annotations

import argparse
from typing import Any

MODEL_HELP = ("a zoo name (leanconv models lists them), torchvision:NAME, timm:NAME, a "
              "training checkpoint (runs/NAME/best.pt) or a `leanconv convert --out` file")


def input_size(text: str) -> tuple[int, int, int]:
    """``'3x224x224'`` -> ``(3, 224, 224)``: an input's channels, height and width."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not CxHxW with positive ints, "
                                         f"e.g. 3x224x224")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def square_side(size: tuple[int, int, int], flag: str) -> int:
    """The side of a square ``(C, H, W)``; ValueError naming ``flag`` when H != W (images
    are loaded square)."""
    if size[1] != size[2]:
        raise ValueError(f"{flag} {'x'.join(map(str, size))} is not square; the images are "
                         f"loaded square, so give CxSxS")
    return size[1]


def positive_int(text: str) -> int:
    """An int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int >= 1")
    return value


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional MODEL: anything :func:`leanconv.load_model` takes."""
    parser.add_argument("model", help=MODEL_HELP)


def add_build_options(parser: argparse.ArgumentParser, in_chans: bool = True) -> None:
    """``--num-classes`` (and ``--in-chans``): what a model built from a name (zoo,
    torchvision:, timm:) is built with; a saved model is checked against them."""
    parser.add_argument("--num-classes", type=positive_int,
                        help="outputs of a model built from a name (default: its own, 1000 "
                             "for torchvision/timm)")
    if in_chans:
        parser.add_argument("--in-chans", type=positive_int,
                            help="input channels of a model built from a name (default: its "
                                 "own); the images follow the model's channels")


def build_options(args: argparse.Namespace) -> dict[str, int]:
    """``{num_classes, in_chans}`` as given to :func:`add_build_options`' flags, ``in_chans``
    else from ``--input``'s channels (:func:`add_input_argument`), for :func:`load_model`."""
    options = {name: getattr(args, name) for name in ("num_classes", "in_chans")
               if getattr(args, name, None) is not None}
    if "in_chans" not in options and getattr(args, "input", None):
        options["in_chans"] = args.input[0]
    return options


def add_input_argument(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--input CxHxW``, defaulting to the input the model was built or trained for."""
    parser.add_argument("--input", type=input_size,
                        help=f"CxHxW {purpose} (default: the model's own, as ModelInfo says: "
                             f"a zoo model's reference size, 224x224 for torchvision/timm, "
                             f"the training data's size for a trained model)")


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1")
    return value


def positive_float(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return value


DATA_FLAGS = {  # flag: (keyword of leanconv.data.load_dataset and TrainConfig, type, help)
    "--data": ("data", str, "fashion-mnist (default), imagefolder:DIR (DIR/train/<class>/*, "
               "DIR/val/<class>/*, or class folders split by --val-split), images:DIR (every "
               "image under DIR, no labels: for distillation and calibration) or synthetic"),
    "--data-dir": ("data_dir", str, "folder with the Fashion-MNIST *-ubyte.gz files"),
    "--image-size": ("image_size", positive_int, "resize images to SxS (default: an image "
                     "folder's most common size; Fashion-MNIST's 28)"),
    "--in-chans": ("in_chans", positive_int, "1 (grayscale) or 3 (RGB); default: the files'"),
    "--val-split": ("val_split", fraction, "share of a one-folder image set held out for "
                    "testing (default 0.1)"),
    "--cache-mb": ("cache_mb", positive_float, "decode an image folder up to this size once "
                   "into a cache next to it (default 4096); larger ones stream"),
    "--workers": ("workers", positive_int, "image decoding processes"),
}
DATA_SWITCHES = {"--skip-bad-images": "skip_bad_images"}


SWITCH_HELP = {"--skip-bad-images": "leave unreadable images out (the summary counts them) "
                                    "instead of stopping at the first"}


def add_flags(parser: argparse.ArgumentParser, flags: dict[str, tuple],
              switches: dict[str, str], skip: tuple[str, ...] = ()) -> None:
    """``flags`` (``{flag: (field, type, help)}``) and ``switches`` (``{flag: field}``), all
    but ``skip``, each defaulting to None so that :func:`given_options` sees what was given."""
    for flag, (_, kind, text) in flags.items():
        if flag not in skip:
            parser.add_argument(flag, type=kind, default=None, help=text)
    for flag in switches:
        if flag not in skip:
            parser.add_argument(flag, action="store_true", default=None,
                                help=SWITCH_HELP.get(flag))


def add_data_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """The data flags (all but ``skip``)."""
    add_flags(parser, DATA_FLAGS, DATA_SWITCHES, skip)


def given_options(args: argparse.Namespace, flags: dict[str, tuple], switches: dict[str, str],
                  skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{field: value}`` of the ``flags`` and ``switches`` (all but ``skip``, as
    :func:`add_flags` declared them) given on the command line."""
    values = {}
    for flag, (field, *_) in flags.items():
        if flag in skip:
            continue
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if value is not None:
            values[field] = value
    for flag, field in switches.items():
        if getattr(args, flag[2:].replace("-", "_"), None):
            values[field] = True
    return values
