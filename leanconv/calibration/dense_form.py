"""Every single-linear-conv operator as a dense conv with a fixed sparsity pattern.

An operator ``op`` whose forward is one linear convolution (``nn.Conv2d`` of any ``groups``,
``GroupConv2d`` with or without shuffle, ``HetConv2d`` in either layout, ``MixConv2d``,
``MixedGroupConv``) equals ``F.conv2d(x, W, b, stride, padding, dilation)`` for a dense
weight ``W`` (N, M, K_h, K_w) in a geometry of its own (:class:`DenseForm`): its kernel,
stride, padding and dilation, which need not be those of the conv it replaced (MixConv
``k=3.5.7`` on a 3x3 layer is a dense 7x7 conv with centred 3x3 and 5x5 sub-kernels; a
dilated 3x3 of dilation 3 inside a dilated MixConv is a 7x7 kernel with 9 non-zero taps).

The entries ``W`` may be non-zero at form its *mask*. :func:`dense_mask` derives it
generically: all of the operator's parameters set to 1 (on a copy), the dense weight taken,
its non-zeros kept; no entry can cancel because only ones are added. A fitted dense weight
goes back into the operator through the weight-inheritance rules
(:func:`leanconv.inherit.inherit_weights` with an ``nn.Conv2d`` of the form's geometry),
which are exact on the mask (tested for each operator and layout).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from leanconv.calibration.sampling import Geometry
from leanconv.inherit import conv_tap_index, inherit_weights, left_padding
from leanconv.ops.dense import dense_conv
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.het_conv import HetConv2d
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv
from leanconv.registry import Registry


@dataclass(frozen=True)
class DenseForm:
    """An operator as ``F.conv2d(x, weight, bias, *geometry)``."""

    geometry: Geometry
    weight: torch.Tensor  # (N, M, K_h, K_w)
    bias: torch.Tensor | None


DenseFormRule = Callable[[nn.Module], DenseForm | None]
DENSE_FORMS: Registry[DenseFormRule] = Registry("dense form")


def dense_form(module: nn.Module) -> DenseForm | None:
    """The dense form of ``module`` (module docstring), or None when it has none (a class
    without a rule, a conv with a padding mode other than zeros)."""
    rule = DENSE_FORMS.for_type(module)
    return None if rule is None else rule(module)


@torch.no_grad()
def dense_mask(module: nn.Module) -> torch.Tensor:
    """Bool ``(N, M, K_h, K_w)``: the entries of the dense weight ``module`` can make
    non-zero (module docstring)."""
    ones = copy.deepcopy(module)
    for param in ones.parameters():
        param.fill_(1.0)
    form = dense_form(ones)
    if form is None:
        raise ValueError(f"dense_mask: {type(module).__name__} has no dense form")
    return form.weight != 0


@torch.no_grad()
def load_dense(module: nn.Module, geometry: Geometry, weight: torch.Tensor,
               bias: torch.Tensor | None) -> None:
    """Set ``module``'s parameters from a dense weight (and bias) of its form's geometry,
    through its weight-inheritance rule (exact on :func:`dense_mask`)."""
    reference = next(module.parameters())
    dense = dense_conv(weight.to(reference), None if bias is None else bias.to(reference),
                       geometry.stride, geometry.padding, geometry.dilation)
    how = inherit_weights(module, dense)
    if how == "fresh":
        raise ValueError(f"load_dense: no inheritance rule maps a dense weight into "
                         f"{type(module).__name__}")


def _conv_geometry(conv: nn.Conv2d) -> Geometry:
    return Geometry(tuple(conv.kernel_size), tuple(conv.stride), left_padding(conv),
                    tuple(conv.dilation))


def _embed(convs: list[nn.Conv2d], geometry: Geometry, channels: tuple[int, int]
           ) -> DenseForm:
    """The dense form of convs side by side on consecutive channel blocks (MixConv)."""
    reference = convs[0].weight
    weight = reference.new_zeros(channels[0], channels[1], *geometry.kernel)
    biases = []
    in_offset = out_offset = 0
    for conv in convs:
        index, inside = conv_tap_index(conv, in_offset, out_offset, geometry.kernel,
                                       geometry.padding, geometry.dilation)
        if not bool(inside.all()):
            raise ValueError(f"dense form: {conv} does not fit the geometry {geometry}")
        weight[tuple(t.reshape(-1) for t in index)] = conv.weight.reshape(-1)
        biases.append(conv.bias if conv.bias is not None
                      else reference.new_zeros(conv.out_channels))
        in_offset += conv.in_channels
        out_offset += conv.out_channels
    bias = torch.cat(biases) if any(conv.bias is not None for conv in convs) else None
    return DenseForm(geometry, weight, bias)


@DENSE_FORMS.register(nn.Conv2d)
def _conv(conv: nn.Conv2d) -> DenseForm | None:
    if conv.padding_mode != "zeros":
        return None
    if conv.padding == "same" and any(d * (k - 1) % 2 for k, d in zip(
            conv.kernel_size, conv.dilation, strict=True)):
        return None  # asymmetric 'same' padding: no F.conv2d geometry
    return _embed([conv], _conv_geometry(conv), (conv.out_channels, conv.in_channels))


@DENSE_FORMS.register(GroupConv2d)
def _group(op: GroupConv2d) -> DenseForm:
    dense = op.to_dense()
    return DenseForm(_conv_geometry(op.conv), dense.weight, dense.bias)


@DENSE_FORMS.register(HetConv2d)
def _hetconv(op: HetConv2d) -> DenseForm:
    k, s, p, d = op.kernel_size, op.stride, op.padding, op.dilation
    return DenseForm(Geometry((k, k), (s, s), (p, p), (d, d)), op.to_dense_weight(), op.bias)


@DENSE_FORMS.register(MixConv2d, MixedGroupConv)
def _mixed(op: MixConv2d | MixedGroupConv) -> DenseForm:
    """Dilation ``D``: the gcd of the groups' dilations; padding: the largest group padding;
    kernel: the smallest that holds every group's taps, centred (same-style padding)."""
    convs = list(op.convs)
    geometry = []
    for axis in (0, 1):
        dilation = math.gcd(*(conv.dilation[axis] for conv in convs))
        padding = max(left_padding(conv)[axis] for conv in convs)
        last = max((conv.dilation[axis] * (conv.kernel_size[axis] - 1)
                    - left_padding(conv)[axis] + padding) // dilation for conv in convs)
        geometry.append((last + 1, padding, dilation))
    (kh, ph, dh), (kw, pw, dw) = geometry
    return _embed(convs, Geometry((kh, kw), tuple(convs[0].stride), (ph, pw), (dh, dw)),
                  (op.out_channels, op.in_channels))
