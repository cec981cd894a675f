"""Model registry: ``create_model(name, ...)`` and ``list_models()``.

A family file registers each builder with :func:`register_model`; the builder's keyword
arguments are the model's options (``conv``, ``conv_stem``, ``small_input``, ``width``, ...).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from leanconv.ops._validate import check_call, check_int
from leanconv.ops.create_conv import parse_conv_spec

ModelBuilder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder, the input size its published cost refers to."""

    name: str
    build: ModelBuilder
    input_size: int = 224


_MODELS: dict[str, ModelEntry] = {}


def register_model(input_size: int = 224) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering a builder under its function name."""

    def register(build: ModelBuilder) -> ModelBuilder:
        _MODELS[build.__name__] = ModelEntry(build.__name__, build, input_size)
        return build

    return register


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching the glob ``pattern``, sorted."""
    return sorted(name for name in _MODELS if fnmatch.fnmatch(name, pattern))


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ValueError listing close matches when unknown."""
    if not isinstance(name, str) or name not in _MODELS:
        close = difflib.get_close_matches(str(name), _MODELS, n=5, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else (
            f"known models: {', '.join(list_models())}")
        raise ValueError(f"create_model: unknown model {name!r}; {hint}")
    return _MODELS[name]


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int = 3,
    conv: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    ``num_classes`` defaults to the family's own (1000 for ImageNet models, 10 for the
    ``*_cifar`` ones). ``conv`` (a :func:`leanconv.create_conv` spec) replaces the spatial
    (KxK, non-depthwise) convs; the stem stays standard unless ``conv_stem=True``.
    """
    entry = model_entry(name)
    check_int("create_model", "in_chans", in_chans)
    if num_classes is not None:
        check_int("create_model", "num_classes", num_classes)
        kwargs["num_classes"] = num_classes
    if conv is not None:
        parse_conv_spec(conv)  # a malformed spec fails here, naming the valid kinds
    check_call(f"create_model({name!r})", entry.build, in_chans=in_chans, conv=conv, **kwargs)
    return entry.build(in_chans=in_chans, conv=conv, **kwargs)
