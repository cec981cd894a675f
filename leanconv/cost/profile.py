"""``leanconv.profile``: per-layer and per-model cost, captured at the dispatch level.

Every aten (or custom) op the forward pass dispatches is priced by :mod:`op_costs` and
charged to every module on the module stack at that moment (tracked with temporary global
forward hooks), so functional ops, ``x + y``, ``torch.cat``, copies and custom ops are all
seen and attributed to the module that ran them, at any depth. Without ``latency`` the model
runs on meta tensors (its parameters swapped in by ``torch.func.functional_call``): no
activation memory, no real compute, and the model itself is never modified. The forward runs
in eval mode (inference cost); the model's mode is restored afterwards.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.utils._python_dispatch import TorchDispatchMode

from leanconv._validate import check_input_shape, check_module, check_threads
from leanconv.cost.analytic import analytic_macs
from leanconv.cost.indicators import g1_row, g2_row
from leanconv.cost.latency import make_inputs, measure
from leanconv.cost.op_costs import ALLOCATION_OPS, OP_COSTS, VIEW_OPS, OpCost, tensors
from leanconv.cost.report import Profile

BLOCK_NAME = re.compile(r"^stages\.\d+\.\d+$")


@dataclass
class Tally:
    """Costs accumulated for one module (subtree) or one module's own ops."""

    macs: int = 0
    flops: int = 0
    memory_access: int = 0
    memory_access_bytes: int = 0
    elementwise_access: int = 0
    kernels: int = 0
    unknown: Counter = field(default_factory=Counter)

    def add(self, cost: OpCost, access: int, access_bytes: int, unknown: str | None) -> None:
        self.macs += cost.macs
        self.flops += cost.flops
        self.memory_access += access
        self.memory_access_bytes += access_bytes
        self.elementwise_access += access if cost.elementwise else 0
        self.kernels += 1
        if unknown:
            self.unknown[unknown] += 1


@dataclass
class Capture:
    """What one traced forward pass recorded."""

    subtree: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    own: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    inputs: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    convs: list[dict[str, Any]] = field(default_factory=list)


class _CostMode(TorchDispatchMode):
    def __init__(self, capture: Capture, stack: list[str]) -> None:
        super().__init__()
        self.capture, self.stack = capture, stack

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if not self.stack or packet in VIEW_OPS or packet in ALLOCATION_OPS:
            return out
        formula = OP_COSTS.find(packet)
        cost = formula(args, kwargs, out) if formula else OpCost()
        moved = tensors((args, kwargs)) + tensors(out)
        access = sum(t.numel() for t in moved)
        access_bytes = sum(t.numel() * t.element_size() for t in moved)
        unknown = None if formula else str(packet)
        for module in self.stack:
            self.capture.subtree[module].add(cost, access, access_bytes, unknown)
        self.capture.own[self.stack[-1]].add(cost, access, access_bytes, unknown)
        if packet is torch.ops.aten.convolution and not args[6]:
            self._record_conv(args, out)
        return out

    def _record_conv(self, args: tuple[Any, ...], out: torch.Tensor) -> None:
        weight, groups = args[1], args[8]
        self.capture.convs.append({
            "layer": self.stack[-1], "c1": weight.shape[1] * groups, "c2": weight.shape[0],
            "k": weight.shape[-1], "groups": groups, "h": out.shape[-2], "w": out.shape[-1],
        })


def _trace(model: nn.Module, x: torch.Tensor, tensors_by_name: dict[str, torch.Tensor]
           ) -> Capture:
    capture, stack = Capture(), []
    names = {id(m): n for n, m in model.named_modules()}

    def enter(module: nn.Module, args: tuple[Any, ...]) -> None:
        name = names.get(id(module))
        if name is not None:
            stack.append(name)
            capture.subtree.setdefault(name, Tally())  # a module running no op has a record
            capture.inputs.setdefault(name, [tuple(t.shape) for t in tensors(args)])

    def leave(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        name = names.get(id(module))
        if name is not None and stack and stack[-1] == name:
            stack.pop()
            shapes = [tuple(t.shape) for t in tensors(out)]
            capture.outputs.setdefault(name, shapes[0] if shapes else ())

    pre = nn.modules.module.register_module_forward_pre_hook(enter)
    post = nn.modules.module.register_module_forward_hook(leave)
    try:
        # inference mode would skip the decomposition of composite ops (conv2d, linear, ...)
        # into the aten ops the cost formulas know; no_grad keeps autograd out
        with torch.inference_mode(False), torch.no_grad(), _CostMode(capture, stack):
            functional_call(model, tensors_by_name, (x,), strict=False)
    finally:
        pre.remove()
        post.remove()
    return capture


def _meta_state(model: nn.Module, dtype: torch.dtype, channels_last: bool
                ) -> dict[str, torch.Tensor]:
    state = {}
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        fmt = torch.channels_last if channels_last and t.dim() == 4 else torch.contiguous_format
        meta = torch.empty_like(t, device="meta", dtype=dtype if t.is_floating_point()
                                else t.dtype)
        state[name] = meta.contiguous(memory_format=fmt)
    return state


def _check_args(model: object, input_shape: object, device: object, dtype: object,
                threads: object) -> None:
    check_module("profile", "model", model)
    check_input_shape("profile", input_shape)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"profile: device={device!r} is invalid; choose 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("profile: device='cuda' but no CUDA device is available; use 'cpu'")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"profile: dtype={dtype!r} is invalid; expected a floating torch.dtype,"
                         f" e.g. torch.float32")
    check_threads("profile", threads)


def _analytic(model: nn.Module, capture: Capture) -> tuple[dict[str, int], dict[str, int]]:
    """MACs to add to each subtree and to each module's own ops (analytic - executed) for the
    outermost modules with a registered formula."""
    subtree_delta: dict[str, int] = defaultdict(int)
    own_delta: dict[str, int] = defaultdict(int)
    covered: list[str] = []
    for name, module in model.named_modules():
        if name not in capture.outputs or any(name.startswith(c + ".") for c in covered):
            continue
        formula = analytic_macs(module, capture.outputs[name])
        if formula is None:
            continue
        covered.append(name)
        delta = formula - capture.subtree[name].macs
        own_delta[name] += delta
        parts = name.split(".") if name else []
        for i in range(len(parts) + 1):  # the module, its ancestors and the root ""
            subtree_delta[".".join(parts[:i])] += delta
    return subtree_delta, own_delta


def _record(name: str, kind: str, tally: Tally, analytic_delta: int, params: int,
            capture: Capture) -> dict[str, Any]:
    inputs = capture.inputs.get(name, [])
    return {
        "name": name, "type": kind,
        "input_shape": inputs[0] if len(inputs) == 1 else inputs,
        "output_shape": capture.outputs.get(name, ()),
        "params": params,
        "macs_analytic": tally.macs + analytic_delta,
        "macs_executed": tally.macs,
        "flops": tally.flops,
        "memory_access": tally.memory_access,
        "memory_access_bytes": tally.memory_access_bytes,
        "intensity": tally.flops / tally.memory_access_bytes if tally.memory_access_bytes else 0.0,
        "kernels": tally.kernels,
        "unknown_ops": dict(tally.unknown),
    }


def profile(
    model: nn.Module,
    input_shape: tuple[int, ...] = (1, 3, 224, 224),
    *,
    latency: bool = False,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    threads: int | None = None,
    min_run_time: float = 0.05,
    latency_per_module: bool = True,
) -> Profile:
    """Profile ``model`` on one input of ``input_shape``; see the module docstring.

    ``latency=True`` times the whole model and, with ``latency_per_module``, replays every
    module alone on a real input of its captured shape (``min_run_time`` seconds each,
    ``threads`` CPU threads).
    """
    _check_args(model, input_shape, device, dtype, threads)
    threads = threads or torch.get_num_threads()
    was_training = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.inference_mode(False):
            x = torch.empty(tuple(input_shape), device="meta", dtype=dtype)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            capture = _trace(model, x, _meta_state(model, dtype, channels_last))
    except (RuntimeError, TypeError, IndexError) as error:
        raise ValueError(f"profile: the model failed on an input of shape "
                         f"{tuple(input_shape)}: {error}") from error
    finally:
        for module, mode in was_training.items():
            module.training = mode
    subtree_delta, own_delta = _analytic(model, capture)
    modules_by_name = dict(model.named_modules())
    modules, layers = [], []
    for name, module in modules_by_name.items():
        if name in capture.subtree:
            params = sum(p.numel() for p in module.parameters())
            modules.append(_record(name, type(module).__name__, capture.subtree[name],
                                   subtree_delta[name], params, capture))
    for name, tally in capture.own.items():
        module = modules_by_name[name]
        leaf = not any(True for _ in module.children())
        kind = type(module).__name__ + ("" if leaf else " (own ops)")
        params = sum(p.numel() for p in module.parameters(recurse=leaf))
        layers.append(_record(name, kind, tally, own_delta[name], params, capture))
    if latency:
        timed = modules if latency_per_module else modules[:1]
        _measure_latency(model, capture, timed, input_shape, device, dtype, channels_last,
                         threads, min_run_time)
    return Profile(modules=modules, layers=layers, indicators=_indicators(capture),
                   input_shape=tuple(input_shape))


def _measure_latency(model: nn.Module, capture: Capture, modules: list[dict[str, Any]],
                     input_shape: tuple[int, ...], device: str, dtype: torch.dtype,
                     channels_last: bool, threads: int, min_run_time: float) -> None:
    real = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    if channels_last:
        real = real.to(memory_format=torch.channels_last)
    by_name = dict(real.named_modules())
    for record in modules:
        shapes = capture.inputs.get(record["name"]) if record["name"] else [tuple(input_shape)]
        if not shapes:
            continue
        inputs = make_inputs(shapes, device, dtype, channels_last)
        record["latency_ms"], record["latency_iqr_ms"] = measure(
            by_name[record["name"]], inputs, threads, min_run_time)


def _indicators(capture: Capture) -> dict[str, Any]:
    g1 = [g1_row(c["layer"], c["c1"], c["c2"], c["h"], c["w"]) for c in capture.convs
          if c["k"] == 1 and c["groups"] == 1]
    g2 = [g2_row(c["layer"], c["c1"], c["c2"], c["k"], c["groups"], c["h"], c["w"])
          for c in capture.convs if c["groups"] > 1]
    blocks = [n for n in capture.subtree if BLOCK_NAME.match(n)] or [
        n for n in capture.subtree if n and "." not in n]
    total = capture.subtree[""]
    return {
        "G1": g1,
        "G2": g2,
        "G3": [{"block": n, "kernels": capture.subtree[n].kernels} for n in blocks],
        "G4": {"elementwise_memory_access": total.elementwise_access,
               "memory_access": total.memory_access,
               "share": total.elementwise_access / total.memory_access
               if total.memory_access else 0.0},
    }
