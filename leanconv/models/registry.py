"""Model registry: ``create_model(name, ...)`` and ``list_models()``.

A family file registers each builder with the :func:`register_model` decorator; the
function's name is the model's name (``grep "def shufflenet_v2_x1_0"`` finds it) and its
keyword arguments are the model's options (``conv``, ``conv_stem``, ``small_input``, ...).
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from leanconv._validate import check_call, check_int
from leanconv.ops.create_conv import parse_conv_spec
from leanconv.registry import Registry

ModelBuilder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and what it expects by default.

    ``input_size``: the square input its published cost refers to; ``in_chans`` and
    ``num_classes``: the builder's defaults; ``small_input``: whether the builder takes
    ``small_input=True`` (a stride-1 stem without the stem's max-pool, for 28-32 pixel
    images).
    """

    name: str
    build: ModelBuilder
    input_size: int
    in_chans: int
    num_classes: int
    small_input: bool


_MODELS: Registry[ModelEntry] = Registry("model")


def register_model(*, input_size: int = 224) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering a builder under its function name: the one way to add a model.

    The builder takes its options as keywords (``num_classes``, ``in_chans``, ``conv``, ...);
    their defaults become the entry's metadata. A name registered twice is a ValueError.
    """
    check_int("register_model", "input_size", input_size)

    def register(build: ModelBuilder) -> ModelBuilder:
        parameters = inspect.signature(build).parameters
        missing = [p for p in ("num_classes", "in_chans", "conv") if p not in parameters]
        if missing:
            raise ValueError(f"register_model: builder {build.__name__} lacks the keyword "
                             f"arguments {missing} every zoo model takes")
        _MODELS.add(build.__name__, ModelEntry(
            build.__name__, build, input_size, parameters["in_chans"].default,
            parameters["num_classes"].default, "small_input" in parameters), origin=build)
        return build

    return register


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching the glob ``pattern``, sorted."""
    return sorted(name for name in _MODELS if fnmatch.fnmatch(name, pattern))


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ValueError listing close matches when unknown."""
    if not isinstance(name, str):
        raise ValueError(f"create_model: model name {name!r} is invalid; expected a string "
                         f"such as 'resnet20_cifar' (leanconv.list_models() lists them)")
    return _MODELS.get(name)


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
