"""``fold(model)``: the eval-mode inference form of a model, exact up to fp32 rounding.

What it does, in order (each step a row of the :class:`FoldReport` it returns beside the
folded model):

1. **Shuffles** with one group are removed; shuffles whose every reader is a dense conv or
   linear layer (through per-channel layers) move into those readers' weights
   (:mod:`leanconv.deploy.shuffle`).
2. **BatchNorm** folds into the operator whose output it alone reads, by that operator's rule
   (:mod:`leanconv.deploy.batchnorm`): convs, depthwise-separable pairs, HetConv's two
   branches, MixConv's groups, group convs through their shuffle, DeformConv's kernel.
3. **Activations** whose input nothing else reads (a conv's output, say) run in place.
4. **HetConv** becomes :class:`FoldedHetConv2d` (grouped KxK conv with the 1x1 part
   accumulated into it) or, with ``hetconv='dense'``, one dense conv; ``'auto'`` measures both
   per layer on ``input_shape`` and keeps the faster (:mod:`leanconv.deploy.autotune`).
5. **MixConv** stays split or becomes one zero-padded depthwise conv
   (:mod:`leanconv.deploy.single_kernel`); ``'auto'`` measures per layer these two and every
   merge of adjacent groups in between (``merged 2+2``: 3x3+5x5 and 7x7+9x9 as two convs;
   :mod:`leanconv.deploy.autotune`). MixNet's equal grouped pointwise convs become one
   ``groups=g`` conv under the same choice.
6. **Group convs** (:class:`GroupConv2d`) stay grouped or become one dense conv with a
   block-diagonal weight, rows permuted by their shuffle; ``'auto'`` measures both.
   A runtime measures steps 4 to 6 with its own ``timer`` (:mod:`leanconv.runtimes.forms`).
7. **Verification** (with ``input_shape``): the folded model's output is compared with the
   original's in eval mode; a difference above ``atol`` (relative to the output's scale,
   default :data:`VERIFY_ATOL`) in fp32 and in float64, and above :data:`ROUNDING_FACTOR`
   times the original's own fp32 rounding (its output against a float64 run), raises
   :class:`FoldError`.

Data flow comes from a ``torch.fx`` trace (:mod:`leanconv.deploy.graph`); a model that does
not trace is folded only where a BatchNorm directly follows its producer in an
``nn.Sequential``, and the report says so.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from leanconv._validate import (
    check_choice,
    check_input_shape,
    check_module,
    check_threads,
)
from leanconv.deploy.autotune import (
    GROUPCONV_FORMS,
    HETCONV_FORMS,
    MIXCONV_FORMS,
    FormTimer,
    choose_forms,
)
from leanconv.deploy.batchnorm import can_fold, fold_rule
from leanconv.deploy.folded_hetconv import FoldedHetConv2d
from leanconv.deploy.graph import graph_pairs, module_uses, sequential_pairs, trace
from leanconv.deploy.shuffle import apply_shuffle_fold, drop_trivial_shuffles, plan_shuffle_folds
from leanconv.errors import FoldError
from leanconv.ops.het_conv import HetConv2d
from leanconv.tables import format_table

# The verification's tolerance, relative to the output's scale. Where fp32 rounding alone is
# larger (deep models with huge activations: shrunk, calibrated random-weight regnet_y_1_6gf
# and resnet50, outputs of 1e4 to 1e8, found by benchmarks/torchvision_sweep.py), the fold is
# accepted when both models agree to it in float64, or differ by at most a multiple of the
# original's own rounding (its fp32 output against its float64 output). A wrongly folded layer
# is off by the order of the output in any precision.
VERIFY_ATOL = 1e-5
ROUNDING_FACTOR = 10
# modules whose output is a new tensor (an in-place activation after them touches nothing else)
FRESH_OUTPUTS = (FoldedHetConv2d, nn.BatchNorm2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d,
                 nn.AdaptiveAvgPool2d)


@dataclass
class FoldRow:
    """One decision: ``name`` (module path), ``action`` and a human-readable ``detail``."""

    name: str
    action: str
    detail: str = ""


@dataclass
class FoldReport:
    """What :func:`fold` did; ``max_abs_diff`` is None when no ``input_shape`` was given."""

    rows: list[FoldRow] = field(default_factory=list)
    trace_error: str | None = None
    max_abs_diff: float | None = None

    def add(self, name: str, action: str, detail: str = "") -> None:
        self.rows.append(FoldRow(name, action, detail))

    def count(self, action: str) -> int:
        return sum(row.action == action for row in self.rows)

    def table(self) -> str:
        """One line per decision (module, action, detail), then the trace fallback and the
        verified difference where there are any."""
        lines = [format_table(("module", "action", "detail"),
                              ((row.name, row.action, row.detail) for row in self.rows))]
        if self.trace_error:
            lines.append(f"(not traceable, Sequential fallback: {self.trace_error})")
        if self.max_abs_diff is not None:
            lines.append(f"max |folded - original| = {self.max_abs_diff:.2e}")
        return "\n".join(lines)


def _check_args(model: object, input_shape: object, hetconv: object, mixconv: object,
                groupconv: object, threads: object, atol: object, timer: object) -> None:
    check_module("fold", "model", model)
    if input_shape is not None:
        check_input_shape("fold", input_shape)
    check_choice("fold", "hetconv", hetconv, HETCONV_FORMS)
    check_choice("fold", "mixconv", mixconv, MIXCONV_FORMS)
    check_choice("fold", "groupconv", groupconv, GROUPCONV_FORMS)
    check_threads("fold", threads)
    if timer is not None and not callable(timer):
        raise ValueError(f"fold: timer={timer!r} is invalid; expected None (PyTorch) or a "
                         f"callable (layer name, {{form: module}}, input shape) -> "
                         f"{{form: ms}}")
    if isinstance(atol, bool) or not isinstance(atol, int | float) or not atol > 0:
        raise ValueError(f"fold: atol={atol!r} is invalid; expected a positive number")


def _fold_graph(model: nn.Module, report: FoldReport) -> None:
    """Steps 1 to 3 of the module docstring, on the model's data flow."""
    for name in drop_trivial_shuffles(model):
        report.add(name, "shuffle removed", "groups=1 is the identity")
    graph = trace(model)
    if isinstance(graph, str):
        report.trace_error = graph
        pairs = sequential_pairs(model)
    else:
        for plan in plan_shuffle_folds(model, graph):
            apply_shuffle_fold(model, plan)
            report.add(plan.source, "shuffle folded", "into " + ", ".join(plan.consumers))
        pairs = graph_pairs(model, trace(model))
    for producer, bn in pairs:
        module = model.get_submodule(producer)
        model.set_submodule(producer, fold_rule(module)(module, model.get_submodule(bn)))
        model.set_submodule(bn, nn.Identity())
        report.add(bn, "bn folded", f"into {producer} ({type(module).__name__})")
    for name, module in model.named_modules():
        if can_fold(module):
            report.add(name, "bn kept", "no single producer with a fold rule reads into it")
    if not isinstance(graph, str):
        _activations_in_place(model, trace(model), report)


def _activations_in_place(model: nn.Module, graph: fx.Graph, report: FoldReport) -> None:
    """Activations whose input nothing else reads run in place: no new buffer per activation
    (mobilenet_v2 at batch 32: 1.12x torchvision's time before, 0.81x after)."""
    modules, uses = dict(model.named_modules()), module_uses(graph)

    def fresh(node: object) -> bool:
        """A tensor only ``node``'s one reader sees: a new output, not a view of another."""
        if not isinstance(node, fx.Node) or len(node.users) != 1:
            return False
        if node.op == "call_function":
            return node.target in (operator.add, torch.add, torch.cat)
        if node.op != "call_module" or uses[node.target] != 1:
            return False
        module = modules[node.target]
        if isinstance(module, nn.Identity):
            return fresh(node.args[0])
        return isinstance(module, FRESH_OUTPUTS) or fold_rule(module) is not None

    for node in graph.nodes:
        if node.op != "call_module" or uses[node.target] != 1:
            continue
        module = modules[node.target]
        if getattr(module, "inplace", None) is False and fresh(node.args[0]):
            module.inplace = True
            report.add(node.target, "in place", type(module).__name__)


def fold(
    model: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    *,
    hetconv: str = "auto",
    mixconv: str = "auto",
    groupconv: str = "auto",
    channels_last: bool = False,
    threads: int | None = None,
    atol: float = VERIFY_ATOL,
    timer: FormTimer | None = None,
) -> tuple[nn.Module, FoldReport]:
    """An eval-mode copy of ``model`` with no training-time structure left (module docstring),
    and the :class:`FoldReport` of what was done; ``model`` is not changed.

    ``input_shape`` (batch first) is what the per-layer ``'auto'`` choices are measured on and
    what the result is verified on; without it ``'auto'`` keeps the unmeasured default
    (``fused``/``split``/``grouped``) and nothing is verified. ``channels_last``/``threads``:
    the layout and thread count to measure with (use the deployment's); ``timer``: how a
    layer's forms are timed (default PyTorch eager; a runtime passes its own).
    """
    _check_args(model, input_shape, hetconv, mixconv, groupconv, threads, atol, timer)
    folded = copy.deepcopy(model).eval()
    for parameter in folded.parameters():
        parameter.requires_grad_(False)
    report = FoldReport()
    with torch.no_grad():
        _fold_graph(folded, report)
        for name, module in list(folded.named_modules()):
            if isinstance(module, HetConv2d):
                folded.set_submodule(name, FoldedHetConv2d(module))
        for row in choose_forms(folded, hetconv, mixconv, groupconv, input_shape,
                                channels_last, threads or torch.get_num_threads(), timer):
            report.add(*row)
        if input_shape is not None:
            report.max_abs_diff = _verify(model, folded, tuple(input_shape), atol)
    return folded, report


def _verify(model: nn.Module, folded: nn.Module, input_shape: tuple[int, ...],
            atol: float) -> float:
    reference = copy.deepcopy(model).eval()
    parameter = next(reference.parameters(), None)
    x = torch.randn(input_shape, device=parameter.device if parameter is not None else "cpu",
                    dtype=parameter.dtype if parameter is not None else torch.float32)
    expected, actual = reference(x), folded(x)
    diff = (actual - expected).abs().max().item()
    scale = max(1.0, expected.abs().max().item())
    if diff <= atol * scale:
        return diff
    exact, folded_exact = _in_float64(reference, x), _in_float64(folded, x)
    if exact is None or folded_exact is None:  # cannot be told from rounding
        exact_diff, rounding = float("nan"), 0.0
    else:
        exact_diff = (folded_exact - exact).abs().max().item()
        rounding = (exact - expected.double()).abs().max().item()
    if not (exact_diff <= atol * scale or diff <= ROUNDING_FACTOR * rounding):
        raise FoldError(f"fold: the folded model differs from the original by {diff:.3e}, "
                        f"{exact_diff:.3e} in float64 (allowed {atol:g} x output scale "
                        f"{scale:.3g}, or {ROUNDING_FACTOR} x the original's own fp32 rounding "
                        f"{rounding:.3g}); please report this model: some layer was folded "
                        f"wrongly")
    return diff


def _in_float64(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """A float64 copy of ``model`` run on ``x`` (None when it cannot run in float64, or ``x``
    is not fp32)."""
    if x.dtype != torch.float32:
        return None
    try:
        return copy.deepcopy(model).double()(x.double())
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return None
