"""The conv factory: a short spec string -> an operator module.

``create_conv("hetconv:p=4", 64, 128, 3, 2)`` builds ``HetConv2d(64, 128, 3, 2, p=4)``:
the positional arguments are ``nn.Conv2d``'s, the spec supplies the operator's own keywords.
A spec is ``kind`` or ``kind:name=value,name=value``; values are ints, bools
(``1``/``0``/``true``/``false``), dot-separated int lists (``k=3.5.7``) or a listed word.
The same strings are accepted by the blocks, the model zoo, the converter and the CLI.
Adding an operator means registering one :class:`ConvKind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from leanconv._validate import check_call, check_conv_args, check_int
from leanconv.ops.comp_conv import CompConv2d
from leanconv.ops.deform_conv import DeformConv2d
from leanconv.ops.depthwise_conv import DepthwiseConv2d
from leanconv.ops.dwsep_conv import DepthwiseSeparableConv2d
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.het_conv import LAYOUTS, HetConv2d
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv
from leanconv.ops.padding import get_padding, resolve_padding
from leanconv.ops.stacked_conv import StackedConv2d
from leanconv.registry import Registry

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
    """A spec kind: its builder ``(in, out, k, stride, padding, dilation, *, bias, **kw)``
    and the parameters its spec string takes."""

    name: str
    build: ConvFactory
    summary: str
    params: tuple[SpecParam, ...] = ()

    def describe(self) -> str:
        lines = [f"{self.name}: {self.summary}"]
        lines += [f"    {p.describe()}" for p in self.params]
        return "\n".join(lines)


CONV_KINDS: Registry[ConvKind] = Registry("conv kind")


def register_conv_kind(kind: ConvKind) -> ConvKind:
    """Add a kind to the factory (and so to the CLI, the converter and the zoo); a name
    registered twice is a ValueError."""
    return CONV_KINDS.add(kind.name, kind)


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
    kind = CONV_KINDS.find(name.strip().lower())
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
    padding: int | None = None,
    dilation: int | None = None,
    *,
    bias: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build the operator named by ``spec`` with ``nn.Conv2d``'s positional arguments; a
    factory ``spec`` is called as ``spec(in, out, k, stride, padding=, bias=, **kwargs)``
    (plus ``dilation=`` when given).

    ``padding=None`` is the numeric same-style padding; ``dilation=None`` is 1 unless the spec
    sets it (``dilated:d=2``). ``kwargs`` go to the operator (``act_layer`` for ``stacked``,
    ``norm_layer`` for ``dwsep``, ...). Spec parameters override nothing silently: a value
    given both in the spec and as an argument is an error.
    """
    shared: dict[str, Any] = {"padding": padding, "bias": bias, **kwargs}
    if dilation is not None:
        shared["dilation"] = dilation
    if callable(spec):
        return spec(in_channels, out_channels, kernel_size, stride, **shared)
    kind, values = parse_conv_spec(spec)
    clash = sorted(set(values) & set(shared))
    if clash:
        raise ValueError(f"create_conv: {clash} given both in spec {spec!r} and as arguments; "
                         f"give each once")
    arguments = {**values, **shared}
    check_call(f"create_conv({spec!r})", kind.build, in_channels, out_channels, kernel_size,
               stride, **arguments)
    return kind.build(in_channels, out_channels, kernel_size, stride, **arguments)


def _square(owner: str, name: str, value: tuple[int, ...]) -> int:
    if len(set(value)) != 1:
        raise ValueError(f"{owner}: asymmetric {name} {value}; only square {name}s have a "
                         f"replacement")
    return value[0]


def create_conv_like(spec: str, conv: nn.Module) -> nn.Module:
    """The operator ``spec`` with ``conv``'s geometry (channels, kernel size, stride, padding,
    dilation, bias), on ``conv``'s device and dtype, in its train/eval mode; fresh weights.

    ``spec='standard'`` turns a leanconv operator into its exact dense ``nn.Conv2d``
    (``to_dense()``). Otherwise ``conv`` must be an ungrouped ``nn.Conv2d`` with zero padding
    and square kernel, stride, padding and dilation; ``ValueError`` says what does not fit.
    """
    owner = f"create_conv_like({spec!r})"
    if not isinstance(conv, nn.Module):
        raise ValueError(f"{owner}: conv must be an nn.Module, got {type(conv).__name__}")
    if spec == "standard" and type(conv) is not nn.Conv2d:
        if not hasattr(conv, "to_dense"):
            raise ValueError(f"{owner}: {type(conv).__name__} has no exact dense form")
        new = conv.to_dense()  # ValueError where the operator has no exact dense form
    else:
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"{owner}: expected an nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1:
            raise ValueError(f"{owner}: grouped conv (groups={conv.groups}) has no replacement")
        if conv.padding_mode != "zeros":
            raise ValueError(f"{owner}: padding_mode={conv.padding_mode!r}; only 'zeros' has "
                             f"a replacement")
        if isinstance(conv.padding, str):
            raise ValueError(f"{owner}: string padding {conv.padding!r}; use numeric padding")
        k = _square(owner, "kernel", conv.kernel_size)
        dilation = _square(owner, "dilation", conv.dilation)
        padding = _square(owner, "padding", conv.padding)
        new = create_conv(spec, conv.in_channels, conv.out_channels, k,
                          _square(owner, "stride", conv.stride),
                          None if padding == get_padding(k, dilation) else padding,
                          None if dilation == 1 else dilation, bias=conv.bias is not None)
    reference = next(iter(conv.parameters()), None)
    if reference is not None:
        new = new.to(device=reference.device, dtype=reference.dtype)
    return new.train(conv.training)


def _standard(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
    padding: int | None = None, dilation: int = 1, *, bias: bool = False,
) -> nn.Conv2d:
    owner = "create_conv('standard')"
    check_conv_args(owner, in_channels, out_channels, kernel_size, stride, dilation)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                     resolve_padding(owner, padding, kernel_size, dilation), dilation, bias=bias)


def _dilated(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
    padding: int | None = None, dilation: int = 2, *, bias: bool = False,
) -> nn.Conv2d:
    """A dense conv whose dilation defaults to 2 (the spec's ``d``)."""
    return _standard(in_channels, out_channels, kernel_size, stride, padding, dilation,
                     bias=bias)


def _mixconv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
    padding: int | None = None, dilation: int = 1, *, bias: bool = False,
    kernel_sizes: tuple[int, ...] | None = None, split: str = "equal", dilated: bool = False,
) -> MixConv2d:
    """MixConv with the spec's kernel sizes (``k=3.5.7``), else the layer's one kernel size."""
    check_int("create_conv('mixconv')", "kernel_size", kernel_size)
    return MixConv2d(in_channels, out_channels, kernel_sizes or (kernel_size,), stride, padding,
                     dilation, bias=bias, split=split, dilated=dilated)


def _mixgroup(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
    padding: int | None = None, dilation: int = 1, *, bias: bool = False,
    kernel_sizes: tuple[int, ...] | None = None, split: str = "equal",
) -> MixedGroupConv:
    """Uneven grouped conv with the spec's per-group kernel sizes (default: 2 groups of the
    layer's kernel size)."""
    check_int("create_conv('mixgroup')", "kernel_size", kernel_size)
    return MixedGroupConv(in_channels, out_channels, kernel_sizes or (kernel_size,) * 2, stride,
                          padding, dilation, bias=bias, split=split)


for _kind in (
    ConvKind("standard", _standard, "dense KxK nn.Conv2d"),
    ConvKind("dilated", _dilated, "dense KxK conv with dilation d (Yu & Koltun, ICLR 2016)",
             (SpecParam("d", "dilation", "int", 2, "dilation rate"),)),
    ConvKind("group", GroupConv2d, "group conv, optional channel shuffle (ShuffleNet, CVPR 2018)",
             (SpecParam("g", "groups", "int", 2, "groups"),
              SpecParam("shuffle", "shuffle", "bool", False, "shuffle the output channels"))),
    ConvKind("depthwise", DepthwiseConv2d,
             "depthwise conv, out a multiple of in (Xception, CVPR 2017)"),
    ConvKind("dwsep", DepthwiseSeparableConv2d,
             "depthwise KxK then pointwise 1x1 (MobileNet v1, 2017)",
             (SpecParam("dm", "depth_multiplier", "int", 1, "depth multiplier"),)),
    ConvKind("hetconv", HetConv2d,
             "M/p KxK + (M - M/p) 1x1 kernels per filter (HetConv, CVPR 2019)",
             (SpecParam("p", "p", "int", 4, "part P of KxK kernels"),
              SpecParam("layout", "layout", "choice", "block", "channel layout",
                        {name: name for name in LAYOUTS}))),
    ConvKind("mixconv", _mixconv, "mixed-kernel depthwise conv (MixConv, BMVC 2019)",
             (SpecParam("k", "kernel_sizes", "ints", "the layer's kernel_size",
                        "kernel size of each channel group"),
              SpecParam("split", "split", "choice", "equal", "channel split",
                        {"equal": "equal", "exp": "exponential",
                         "exponential": "exponential"}),
              SpecParam("dilated", "dilated", "bool", False, "dilated 3x3 for k > 3"))),
    ConvKind("mixgroup", _mixgroup, "grouped conv with uneven groups, a kernel size each "
             "(MixNet's grouped pointwise convs)",
             (SpecParam("k", "kernel_sizes", "ints", "two groups of the layer's kernel_size",
                        "kernel size of each channel group"),
              SpecParam("split", "split", "choice", "equal", "channel split",
                        {"equal": "equal", "exp": "exponential",
                         "exponential": "exponential"}))),
    ConvKind("compconv", CompConv2d, "divide-and-conquer compact conv (CompConv, CVPRW 2021)",
             (SpecParam("c0", "c0", "int", 128, "C0 of the adaptive depth"),
              SpecParam("d", "depth", "int", "adaptive", "recursion depth (0: standard)"))),
    ConvKind("stacked", StackedConv2d, "(K-1)/2 stacked 3x3 convs for one KxK (VGG, ICLR 2015)"),
    ConvKind("deform", DeformConv2d, "deformable conv, zero-initialised offsets (DCN, ICCV 2017)",
             (SpecParam("og", "offset_groups", "int", 1, "offset groups"),
              SpecParam("mod", "modulated", "bool", False, "DCNv2 modulation mask"))),
):
    register_conv_kind(_kind)
