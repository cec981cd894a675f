"""Per-operator cost formulas, keyed by the op (``torch.ops.aten.convolution``, or its name
``"aten.convolution"``, checked against ``torch.ops`` when registered, so a misspelt name fails
at import instead of never matching): the registry the profiler uses to price every op it sees
at the dispatch level. Adding an op means adding one entry.

Conventions (what leanconv counts, in one place):

* ``macs``: multiply-accumulates of convolutions, matrix products and deformable convs, the
  work the kernels do, zeros included; bias additions are not MACs.
* ``flops``: ``2 * macs`` plus, for element-wise ops (activations, additions, multiplications,
  batch-norm), one FLOP per output element (two for batch-norm: a scale and a shift), for
  bias additions one per output element, and for pooling/reductions one per input element.
* memory access (ShuffleNet V2's MAC): every tensor an op reads (inputs and weights) plus
  every tensor it writes, in elements and bytes. Views (view, transpose, slice, split, ...)
  cost nothing; copies (clone, cat, index_select, a contiguous() after a shuffle) cost a
  read and a write; allocation (empty) costs nothing.

An op with no entry is still charged its memory traffic, but its FLOPs are unknown: the
profiler lists it in ``Profile.unknown_ops`` rather than counting it as zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torchvision  # noqa: F401 (registers torch.ops.torchvision, priced below)
from torch._ops import OpOverload, OpOverloadPacket
from torch.utils._pytree import tree_flatten

from leanconv.kernels.mixed_depthwise import mixed_depthwise_macs
from leanconv.registry import Registry


@dataclass
class OpCost:
    """What one op execution costs."""

    macs: int = 0
    flops: int = 0
    elementwise: bool = False


CostFormula = Callable[[tuple[Any, ...], dict[str, Any], Any], OpCost]


def op_key(op: object) -> OpOverloadPacket:
    """The op packet that ``op`` names: ``"aten.add"``, ``torch.ops.aten.add`` and
    ``torch.ops.aten.add.Tensor`` all give ``torch.ops.aten.add``; ValueError for a name that
    is not a registered op."""
    if isinstance(op, OpOverload):
        return op.overloadpacket
    if isinstance(op, OpOverloadPacket):
        return op
    namespace, _, name = op.partition(".") if isinstance(op, str) else ("", "", "")
    try:
        packet = getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        packet = None
    if not isinstance(packet, OpOverloadPacket):
        raise ValueError(f"op {op!r} is not a registered torch op; expected 'namespace.name' "
                         f"such as 'aten.convolution' or an op like torch.ops.aten.convolution")
    return packet


OP_COSTS: Registry[CostFormula] = Registry("op cost formula", normalize=op_key)


def tensors(tree: Any) -> list[torch.Tensor]:
    """The tensors inside a (nested) argument or output structure."""
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def register_op_cost(*ops: str | OpOverloadPacket) -> Callable[[CostFormula], CostFormula]:
    """Decorator: ``formula(args, kwargs, out) -> OpCost`` for ``ops`` (ops or their names)."""
    return OP_COSTS.register(*ops)


def _numel(x: Any) -> int:
    return sum(t.numel() for t in tensors(x))


@register_op_cost("aten.convolution", "aten._convolution", "aten.convolution_overrideable")
def _convolution(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    x, weight, bias = args[0], args[1], args[2]
    transposed = bool(args[6]) if len(args) > 6 else False
    per_output = math.prod(weight.shape[1:])
    macs = (x.numel() if transposed else out.numel()) * per_output
    return OpCost(macs, 2 * macs + (out.numel() if bias is not None else 0))


@register_op_cost("aten.mm", "aten.bmm")
def _matmul(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    macs = out.numel() * args[0].shape[-1]
    return OpCost(macs, 2 * macs)


@register_op_cost("aten.addmm", "aten.baddbmm", "aten.addmm_", "aten.baddbmm_")
def _addmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    macs = out.numel() * args[1].shape[-1]
    return OpCost(macs, 2 * macs + out.numel())


@register_op_cost("torchvision.deform_conv2d")
def _deform_conv2d(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    """Kernel GEMM + 4 MACs per bilinear sample (+ 1 for the modulation mask)."""
    x, weight, mask = args[0], args[1], args[3]
    samples = out.numel() // out.shape[1] * x.shape[1] * math.prod(weight.shape[2:])
    per_sample = 4 + (1 if mask is not None and mask.numel() else 0)
    macs = out.numel() * math.prod(weight.shape[1:]) + samples * per_sample
    return OpCost(macs, 2 * macs)


@register_op_cost("leanconv.mixed_depthwise_conv2d")
def _mixed_depthwise_conv2d(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    """leanconv's one-pass MixConv / depthwise kernel (:mod:`leanconv.kernels`)."""
    x, weights, bias = args
    macs = mixed_depthwise_macs(x.shape, [w.shape for w in weights])
    return OpCost(macs, 2 * macs + (out.numel() if bias is not None else 0))


@register_op_cost("leanconv.mixed_depthwise_conv2d_weight_grad")
def _mixed_depthwise_weight_grad(args: tuple[Any, ...], kwargs: dict[str, Any],
                                 out: Any) -> OpCost:
    """Its weight gradient: as many MACs as the forward pass."""
    x, _, channels, kernel_sizes = args
    macs = mixed_depthwise_macs(
        x.shape, [(c, 1, k, k) for c, k in zip(channels, kernel_sizes, strict=True)])
    return OpCost(macs, 2 * macs)


def _elementwise(per_element: int) -> CostFormula:
    def formula(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        return OpCost(0, per_element * _numel(out[0] if isinstance(out, tuple) else out), True)

    return formula


def _reduction(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    return OpCost(0, args[0].numel())


def _data_movement(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    return OpCost()


for _name in ("add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "relu", "relu_",
              "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "silu", "silu_", "hardswish",
              "hardswish_", "hardsigmoid", "hardsigmoid_", "gelu", "tanh", "tanh_", "clamp",
              "clamp_", "clamp_min", "neg", "exp", "rsub", "where", "leaky_relu", "leaky_relu_",
              "elu", "elu_", "threshold", "maximum", "minimum", "addcmul", "addcdiv"):
    OP_COSTS.add(f"aten.{_name}", _elementwise(1))
for _name in ("native_batch_norm", "_native_batch_norm_legit",
              "_native_batch_norm_legit_no_training", "native_layer_norm", "native_group_norm"):
    OP_COSTS.add(f"aten.{_name}", _elementwise(2))
for _name in ("mean", "sum", "amax", "avg_pool2d", "_adaptive_avg_pool2d", "max_pool2d",
              "max_pool2d_with_indices", "adaptive_max_pool2d", "softmax", "_softmax",
              "_log_softmax", "log_softmax"):
    OP_COSTS.add(f"aten.{_name}", _reduction)
for _name in ("clone", "copy_", "_to_copy", "cat", "stack", "index_select", "index_copy",
              "index_copy_", "index_put", "index_put_", "constant_pad_nd", "channel_shuffle",
              "native_channel_shuffle", "zeros", "zeros_like", "new_zeros", "ones", "ones_like",
              "new_ones", "full", "fill_", "zero_", "gather", "scatter", "masked_fill",
              "bernoulli_", "native_dropout", "_unsafe_index", "contiguous", "randn", "rand",
              "randn_like", "rand_like", "arange"):
    OP_COSTS.add(f"aten.{_name}", _data_movement)
# ops that cost nothing: views move no data, allocations touch none
VIEW_OPS = frozenset(op_key(f"aten.{name}") for name in (
    "view", "_unsafe_view", "reshape", "transpose", "t", "permute", "slice", "select", "narrow",
    "split", "split_with_sizes", "chunk", "unbind", "expand", "squeeze", "unsqueeze",
    "as_strided", "alias", "detach", "unflatten", "flatten", "_reshape_alias", "view_as",
    "lift_fresh", "diagonal", "movedim", "numpy_T", "unfold"))
ALLOCATION_OPS = frozenset(op_key(f"aten.{name}") for name in (
    "empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided", "scalar_tensor",
    "_local_scalar_dense"))
