"""Arguments shared by the commands: their types (argparse calls them on the text of one
argument and turns an ``ArgumentTypeError`` into ``leanconv CMD: error: ...`` with exit code 2)
and the declarations several commands make alike."""

from __future__ import annotations

import argparse

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


def add_input_argument(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--input CxHxW``, defaulting to the input the model was built or trained for."""
    parser.add_argument("--input", type=input_size,
                        help=f"CxHxW {purpose} (default: the model's own, as ModelInfo says: "
                             f"a zoo model's reference size, 224x224 for torchvision/timm, "
                             f"the training data's size for a trained model)")
