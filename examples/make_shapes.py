"""Write a small image folder to try leanconv on: discs and squares, PNG and JPEG.

    python examples/make_shapes.py DIR [--train 160] [--val 40]

``DIR/train/<class>/*`` and ``DIR/val/<class>/*`` (torchvision's ImageFolder layout), 32x32
RGB, a shape of random colour, size and place on a noisy background; every other file a
JPEG. docs/convert.md's "Make your own model cheaper" runs leanconv on it (and a test runs that).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("disc", "square")
SIZE = 32


def shape_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """One (32, 32, 3) uint8 image of class ``CLASSES[label]``."""
    image = rng.integers(0, 80, (SIZE, SIZE, 3))
    radius = int(rng.integers(5, 11))
    cy, cx = (int(v) for v in rng.integers(radius, SIZE - radius, 2))
    y, x = np.mgrid[:SIZE, :SIZE]
    if CLASSES[label] == "disc":
        inside = (y - cy) ** 2 + (x - cx) ** 2 <= radius ** 2
    else:
        inside = (abs(y - cy) <= radius * 0.8) & (abs(x - cx) <= radius * 0.8)
    image[inside] = rng.integers(120, 256, 3)
    return image.astype(np.uint8)


def make_shapes(root: str | Path, train: int = 160, val: int = 40, seed: int = 0) -> Path:
    """Write ``train`` and ``val`` images per class under ``root``; returns ``root``."""
    if train < 1 or val < 1:
        raise ValueError(f"make_shapes: train={train} and val={val} must both be >= 1")
    rng = np.random.default_rng(seed)
    root = Path(root)
    for split, count in (("train", train), ("val", val)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                suffix = "jpg" if i % 2 else "png"
                Image.fromarray(shape_image(label, rng)).save(folder / f"{i:03d}.{suffix}")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="folder to write (created)")
    parser.add_argument("--train", type=int, default=160, help="training images per class")
    parser.add_argument("--val", type=int, default=40, help="validation images per class")
    args = parser.parse_args()
    try:
        root = make_shapes(args.root, args.train, args.val)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {root}/train and {root}/val ({len(CLASSES)} classes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
