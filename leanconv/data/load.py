"""``load_dataset(spec)``: the one way to get training data, from a short spec.

* ``fashion-mnist``: :mod:`leanconv.data.fashion_mnist` (``data_dir`` or ``$LEANCONV_DATA``
  or the Debian package's folder);
* ``imagefolder:DIR``: :mod:`leanconv.data.image_folder` (``DIR/train/<class>/*`` and
  ``DIR/val/<class>/*``, or class folders directly in ``DIR``, split by ``val_split``);
* ``images:DIR``: every image under ``DIR``, recursively, without labels (split by
  ``val_split``): for what needs no labels (calibration, sensitivity, distillation);
* ``synthetic``: :mod:`leanconv.data.synthetic` (always the same set, made at ``in_chans``
  x ``image_size`` when they are given).

``image_size`` and ``in_chans`` apply to every source (an in-memory set is resized and its
channels converted once, :func:`leanconv.data.dataset.conform`; an image folder decodes to
them).

A model's outputs are checked against the data's classes only where labels are used
(:func:`labels_apply`): fitting weights to the original's outputs, sensitivity and
distillation need none, so any images the model takes serve them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from leanconv._validate import check_int
from leanconv.data.dataset import Dataset, TensorImages, channel_stats, conform
from leanconv.data.fashion_mnist import load_fashion_mnist
from leanconv.data.image_folder import load_image_folder
from leanconv.data.synthetic import synthetic_dataset

if TYPE_CHECKING:
    from leanconv.loading import ModelInfo

KINDS = ("fashion-mnist", "imagefolder:DIR", "images:DIR", "synthetic")
_FOLDER_KINDS = ("imagefolder", "images")
DEFAULT_CACHE_MB = 4096  # an image folder up to this decoded size is cached as one tensor


def parse_data_spec(spec: object) -> tuple[str, str | None]:
    """``(kind, folder)`` of a data spec: ``('fashion-mnist', None)``, ``('synthetic', None)``,
    ``('imagefolder', DIR)`` or ``('images', DIR)``; ValueError naming the valid forms."""
    if isinstance(spec, str):
        kind, colon, folder = spec.partition(":")
        if spec in ("fashion-mnist", "synthetic"):
            return spec, None
        if kind in _FOLDER_KINDS and colon and folder.strip():
            return kind, folder
    raise ValueError(f"data={spec!r} is invalid; valid: {', '.join(KINDS)}")


def load_dataset(spec: str = "fashion-mnist", *, data_dir: str | os.PathLike[str] | None = None,
                 image_size: int | None = None, in_chans: int | None = None,
                 val_split: float = 0.1, cache_mb: float = DEFAULT_CACHE_MB,
                 skip_bad_images: bool = False, workers: int | None = None,
                 progress: bool = False) -> Dataset:
    """The :class:`Dataset` ``spec`` names (see the module docstring), validated.

    ``data_dir``: Fashion-MNIST's folder. ``val_split``, ``cache_mb``, ``skip_bad_images``,
    ``workers``: how an image folder is split, cached and decoded
    (:func:`leanconv.data.image_folder.load_image_folder`).
    """
    kind, folder = parse_data_spec(spec)
    for name, value in (("image_size", image_size), ("in_chans", in_chans)):
        if value is not None:
            check_int("load_dataset", name, value)
    if in_chans not in (None, 1, 3):
        raise ValueError(f"load_dataset: in_chans={in_chans} is invalid; valid: 1 (grayscale) "
                         f"or 3 (RGB)")
    if kind in _FOLDER_KINDS:
        return load_image_folder(folder, image_size=image_size, in_chans=in_chans,
                                 val_split=val_split, cache_mb=cache_mb,
                                 skip_bad_images=skip_bad_images, workers=workers,
                                 progress=progress, labeled=kind == "imagefolder")
    if kind == "synthetic":  # the same set for every run, like a real one
        shape = (in_chans or 1, image_size or 28, image_size or 28)
        return synthetic_dataset(image_shape=shape)
    data = load_fashion_mnist(data_dir)
    if (in_chans, image_size) == (None, None):
        return data
    assert isinstance(data.train, TensorImages) and isinstance(data.test, TensorImages)
    train = TensorImages(conform(data.train.tensor, in_chans, image_size), data.train.labels)
    test = TensorImages(conform(data.test.tensor, in_chans, image_size), data.test.labels)
    mean, std = channel_stats(train.tensor)
    return replace(data, train=train, test=test, mean=mean, std=std)


def labels_apply(info: ModelInfo, data: Dataset) -> str | None:
    """None when ``data``'s labels are classes of the model ``info`` describes (as many
    classes as outputs), so that accuracy means something; else why not, in words."""
    if not data.labeled:
        return f"data={data.spec!r} has no labels"
    if data.num_classes != info.num_classes:
        return (f"{info.source!r} has {info.num_classes} outputs; data={data.spec!r} has "
                f"{data.num_classes} classes ({', '.join(data.classes[:10])}"
                f"{', ...' if data.num_classes > 10 else ''})")
    return None


def dataset_for_model(info: ModelInfo, spec: str | None = None, *, need_labels: bool = True,
                      **options: Any) -> Dataset:
    """The data to evaluate or calibrate the model ``info`` describes
    (:func:`leanconv.load_model`'s second result) on: ``spec`` (default: the data it was
    trained on, else Fashion-MNIST) at the model's input size and channels, normalised by the
    statistics it was trained with when it records them. ``options`` go to
    :func:`load_dataset` (default: the trained run's own, for its own data). With
    ``need_labels`` (accuracy), ValueError when the data's labels are not the model's classes
    (:func:`labels_apply`); without, any images the model takes."""
    trained = info.train_config or {}
    spec = spec or trained.get("data") or "fashion-mnist"
    settings = {key: trained[key] for key in ("data_dir", "val_split", "cache_mb",
                                              "skip_bad_images", "workers")
                if key in trained and spec == trained.get("data")}
    height, width = info.input_size
    if height != width:
        raise ValueError(f"{info.source!r} takes {height}x{width} input; leanconv's data is "
                         f"square")
    data = load_dataset(spec, **{"image_size": height, "in_chans": info.in_chans, **settings,
                                 **options})
    problem = labels_apply(info, data) if need_labels else None
    if problem:
        raise ValueError(f"{problem}: accuracy needs images labelled with the model's classes "
                         f"(what needs no labels, calibration and distillation, takes any "
                         f"images: images:DIR, synthetic)")
    recorded = info.data or {}
    if recorded.get("mean") and recorded.get("std"):
        data = data.normalized_with(recorded["mean"], recorded["std"])
    return data
