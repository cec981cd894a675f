"""The conv factory: a short spec string -> an operator module.

``create_conv("hetconv:p=4", 64, 128, 3, stride=2)`` builds ``HetConv2d(64, 128, 3, p=4,
stride=2)``. A spec is ``kind`` or ``kind:name=value,name=value``; values are ints, bools
(``1``/``0``/``true``/``false``), dot-separated int lists (``k=3.5.7``) or a listed word.
The same strings are accepted by the blocks, the model zoo, the converter and the CLI.
Adding an operator means registering one :class:`ConvKind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from leanconv.ops._validate import check_call, check_conv_args, check_int
from leanconv.ops.comp_conv import CompConv2d
from leanconv.ops.deform_conv import DeformConv2d
from leanconv.ops.depthwise_conv import DepthwiseConv2d
from leanconv.ops.dwsep_conv import DepthwiseSeparableConv2d
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.het_conv import LAYOUTS, HetConv2d
from leanconv.ops.mixed_conv import MixConv2d
from leanconv.ops.padding import resolve_padding
from leanconv.ops.stacked_conv import StackedConv2d

ConvFactory = Callable[..., nn.Module]
ConvSpec = str | ConvFactory

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class SpecParam:
    """One ``name=value`` parameter of a spec: how to parse it and which kwarg it sets."""

    name: str
    kwarg: str
    type: str  # 'int', 'bool', 'ints' or 'choice'
    default: Any
    help: str
    choices: dict[str, str] = field(default_factory=dict)  # spelling -> value, for 'choice'

    def parse(self, text: str) -> Any:
        if self.type == "int" and text.lstrip("-").isdigit():
            return int(text)
        if self.type == "bool" and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        if self.type == "ints" and all(part.isdigit() for part in text.split(".")):
            return tuple(int(part) for part in text.split("."))
        if self.type == "choice" and text in self.choices:
            return self.choices[text]
        raise ValueError(f"{self.name}={text!r} is not {self.describe_type()}")

    def describe_type(self) -> str:
        return {
            "int": "an int", "bool": "a bool (1/0/true/false)",
            "ints": "a dot-separated int list like 3.5.7",
        }.get(self.type, "one of " + "|".join(self.choices))

    def describe(self) -> str:
        return f"{self.name}: {self.help} ({self.describe_type()}, default {self.default})"


@dataclass(frozen=True)
class ConvKind:
    """A spec kind: its builder ``(in, out, k, stride, **kw) -> nn.Module`` and parameters."""

    name: str
    build: ConvFactory
    summary: str
    params: tuple[SpecParam, ...] = ()

    def describe(self) -> str:
        lines = [f"{self.name}: {self.summary}"]
        lines += [f"    {p.describe()}" for p in self.params]
        return "\n".join(lines)


CONV_KINDS: dict[str, ConvKind] = {}


def register_conv_kind(kind: ConvKind) -> ConvKind:
    """Add a kind to the factory (and so to the CLI, the converter and the zoo)."""
    CONV_KINDS[kind.name] = kind
    return kind


def conv_spec_help() -> str:
    """Every kind with its parameters, one block per kind."""
    return "\n".join(kind.describe() for kind in CONV_KINDS.values())


def _spec_error(spec: object, reason: str) -> ValueError:
    return ValueError(
        f"invalid conv spec {spec!r}: {reason}. Valid specs are 'kind' or "
        f"'kind:name=value,...' with these kinds:\n{conv_spec_help()}"
    )


def parse_conv_spec(spec: str) -> tuple[ConvKind, dict[str, Any]]:
    """``'hetconv:p=4'`` -> (the hetconv kind, ``{'p': 4}``) with builder kwarg names."""
    if not isinstance(spec, str):
        raise _spec_error(spec, f"expected a string, got {type(spec).__name__}")
    name, _, arguments = spec.strip().partition(":")
    kind = CONV_KINDS.get(name.strip().lower())
    if kind is None:
        raise _spec_error(spec, f"unknown kind {name.strip()!r}")
    by_name = {p.name: p for p in kind.params}
    values: dict[str, Any] = {}
    for item in filter(None, (a.strip() for a in arguments.split(","))):
        key, eq, text = item.partition("=")
        param = by_name.get(key.strip())
        if param is None or not eq:
            known = ", ".join(by_name) or "none"
            raise _spec_error(spec, f"{item!r} is not name=value with a parameter of "
                                    f"{kind.name!r} (its parameters: {known})")
        try:
            values[param.kwarg] = param.parse(text.strip())
        except ValueError as error:
            raise _spec_error(spec, str(error)) from None
    return kind, values


def create_conv(
    spec: ConvSpec,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    **kwargs: Any,
) -> nn.Module:
    """Build the operator named by ``spec`` (or call ``spec`` if it is a factory).

    ``kwargs`` go to the operator: ``padding``, ``dilation``, ``bias`` for every kind, and
    kind-specific ones (``act_layer`` for ``stacked``, ``norm_layer`` for ``dwsep``, ...).
    Spec parameters override nothing silently: giving one twice is an error.
    """
    if callable(spec):
        return spec(in_channels, out_channels, kernel_size, stride=stride, **kwargs)
    kind, values = parse_conv_spec(spec)
    clash = sorted(set(values) & set(kwargs))
    if clash:
        raise ValueError(f"create_conv: {clash} given both in spec {spec!r} and as keyword "
                         f"arguments; give each once")
    arguments = {"stride": stride, **values, **kwargs}
    check_call(f"create_conv({spec!r})", kind.build, in_channels, out_channels, kernel_size,
               **arguments)
    return kind.build(in_channels, out_channels, kernel_size, **arguments)


def _standard(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
    padding: int | None = None, dilation: int = 1, bias: bool = False,
) -> nn.Conv2d:
    owner = "create_conv('standard')"
    check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                     resolve_padding(owner, padding, kernel_size, dilation), dilation, bias=bias)


def _mixconv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
    kernel_sizes: tuple[int, ...] | None = None, split: str = "equal", padding: int | None = None,
    dilation: int = 1, dilated: bool = False, bias: bool = False,
) -> MixConv2d:
    if padding is not None:
        raise ValueError(f"create_conv('mixconv'): padding={padding!r} is invalid; MixConv pads "
                         f"each kernel size itself, leave padding=None")
    check_int("create_conv('mixconv')", "kernel_size", kernel_size)
    return MixConv2d(in_channels, out_channels, kernel_sizes or (kernel_size,), split, stride,
                     dilation, dilated, bias)


for _kind in (
    ConvKind("standard", _standard, "dense KxK nn.Conv2d"),
    ConvKind("dilated", _standard, "dense KxK conv with dilation d (seed 004, section 9)",
             (SpecParam("d", "dilation", "int", 2, "dilation rate"),)),
    ConvKind("group", GroupConv2d, "group conv, optional channel shuffle (ShuffleNet, seed 002)",
             (SpecParam("g", "groups", "int", 2, "groups"),
              SpecParam("shuffle", "shuffle", "bool", False, "shuffle the output channels"))),
    ConvKind("depthwise", DepthwiseConv2d, "depthwise conv, out a multiple of in (seed 004)"),
    ConvKind("dwsep", DepthwiseSeparableConv2d,
             "depthwise KxK then pointwise 1x1 (MobileNet v1, seed 002)",
             (SpecParam("dm", "depth_multiplier", "int", 1, "depth multiplier"),)),
    ConvKind("hetconv", HetConv2d, "M/p KxK + (M - M/p) 1x1 kernels per filter (seed 000)",
             (SpecParam("p", "p", "int", 4, "part P of KxK kernels"),
              SpecParam("layout", "layout", "choice", "block", "channel layout",
                        {name: name for name in LAYOUTS}))),
    ConvKind("mixconv", _mixconv, "mixed-kernel depthwise conv (MixConv, seed 001)",
             (SpecParam("k", "kernel_sizes", "ints", "the layer's kernel_size",
                        "kernel size of each channel group"),
              SpecParam("split", "split", "choice", "equal", "channel split",
                        {"equal": "equal", "exp": "exponential",
                         "exponential": "exponential"}),
              SpecParam("dilated", "dilated", "bool", False, "dilated 3x3 for k > 3"))),
    ConvKind("compconv", CompConv2d, "divide-and-conquer compact conv (CompConv, seed 003)",
             (SpecParam("c0", "c0", "int", 128, "C0 of the adaptive depth"),
              SpecParam("d", "depth", "int", "adaptive", "recursion depth (0: standard)"))),
    ConvKind("stacked", StackedConv2d, "(K-1)/2 stacked 3x3 convs for one KxK (seed 004)"),
    ConvKind("deform", DeformConv2d, "deformable conv, zero-initialised offsets (seed 004)",
             (SpecParam("og", "offset_groups", "int", 1, "offset groups"),
              SpecParam("mod", "modulated", "bool", False, "DCNv2 modulation mask"))),
):
    register_conv_kind(_kind)
