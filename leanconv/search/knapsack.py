"""The per-layer choice as a multiple-choice knapsack, solved by dynamic programming.

Layer ``i`` has candidates ``j`` with a cost ``c_ij`` (predicted latency, ms; or MACs) and a
loss ``l_ij`` (its measured sensitivity). A plan picks one candidate per layer; we want

    minimise  sum_i l_i,j(i)   subject to   sum_i c_i,j(i) <= budget

(NetAdapt, T.-J. Yang et al., ECCV 2018, arXiv:1804.03230, and FBNet, B. Wu et al., CVPR
2019, arXiv:1812.03443, sum per-layer latency tables the same way). The costs are
discretised into ``bins`` units of ``budget / bins``. Rounding every cost **up** gives plans
that are feasible in the real costs (their loss is an upper bound on the optimum); rounding
**down** relaxes the problem, and its optimum is a lower bound. :class:`Selection` carries
both, so a caller can say how far from optimal the plan can be. Each DP is ``O(layers x
candidates x bins)``: 20 layers x 7 candidates x 1,000 bins is 140,000 steps in numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leanconv._validate import check_int

Options = Sequence[Sequence[tuple[float, float]]]  # per layer: (cost, loss) per candidate


@dataclass(frozen=True)
class Selection:
    """One candidate index per layer, the plan's summed cost and loss, and ``lower_bound``:
    no plan within the budget has a loss below it."""

    indices: tuple[int, ...]
    cost: float
    loss: float
    lower_bound: float


def _check(owner: str, options: object, budget: object, bins: object) -> None:
    if not isinstance(options, Sequence) or not options:
        raise ValueError(f"{owner}: options must be a non-empty list (one per layer) of "
                         f"non-empty lists of (cost, loss), got {options!r}")
    for i, layer in enumerate(options):
        if not isinstance(layer, Sequence) or not layer:
            raise ValueError(f"{owner}: options[{i}]={layer!r} must be a non-empty list of "
                             f"(cost, loss) pairs")
        for pair in layer:
            ok = isinstance(pair, Sequence) and len(pair) == 2 and all(
                isinstance(v, int | float) and math.isfinite(v) for v in pair)
            if not ok or pair[0] < 0:
                raise ValueError(f"{owner}: options[{i}] holds {pair!r}; expected (cost, loss) "
                                 f"with a finite cost >= 0 and a finite loss")
    if not isinstance(budget, int | float) or not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"{owner}: budget={budget!r} is invalid; expected a finite number > 0")
    check_int(owner, "bins", bins)


def _solve(options: Options, unit: float, bins: int, rounding: str
           ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``best[u]``: the least loss of a plan whose rounded cost is ``<= u`` units (inf when
    none), and per layer the candidate each ``u`` takes (for the backtrack)."""
    best = np.zeros(bins + 1)
    picks = []
    for layer in options:
        units = [math.ceil(c / unit - 1e-9) if rounding == "up" else math.floor(c / unit + 1e-9)
                 for c, _ in layer]
        new = np.full(bins + 1, np.inf)
        pick = np.full(bins + 1, -1)
        for j, ((_, loss), u) in enumerate(zip(layer, units, strict=True)):
            if u > bins:
                continue
            shifted = np.full(bins + 1, np.inf)
            shifted[u:] = best[:bins + 1 - u] + loss
            better = shifted < new
            new[better], pick[better] = shifted[better], j
        best = new
        picks.append(pick)
    return best, picks


def _backtrack(options: Options, picks: list[np.ndarray], unit: float, level: int,
               rounding: str) -> tuple[int, ...]:
    indices = []
    for layer, pick in zip(reversed(options), reversed(picks), strict=True):
        j = int(pick[level])
        cost = layer[j][0] / unit
        level -= math.ceil(cost - 1e-9) if rounding == "up" else math.floor(cost + 1e-9)
        indices.append(j)
    return tuple(reversed(indices))


def _selection(options: Options, indices: tuple[int, ...], lower_bound: float) -> Selection:
    chosen = [layer[j] for layer, j in zip(options, indices, strict=True)]
    return Selection(indices, sum(c for c, _ in chosen), sum(loss for _, loss in chosen),
                     lower_bound)


def choose(options: Options, budget: float, *, bins: int = 1000) -> Selection | None:
    """The plan of least summed loss whose summed cost is at most ``budget`` (module
    docstring), or None when even the cheapest candidate of every layer exceeds it."""
    _check("choose", options, budget, bins)
    if sum(min(c for c, _ in layer) for layer in options) > budget:
        return None
    unit = budget / bins
    best, picks = _solve(options, unit, bins, "up")
    relaxed, _ = _solve(options, unit, bins, "down")
    if np.isfinite(best[bins]):
        indices = _backtrack(options, picks, unit, bins, "up")
    else:  # within the rounding of the cheapest plan: that plan is the feasible one
        indices = tuple(min(range(len(layer)), key=lambda j, x=layer: x[j][0])
                        for layer in options)
    return _selection(options, indices, float(relaxed[bins]))


def pareto_front(options: Options, *, bins: int = 1000) -> list[Selection]:
    """The plans on the cost-loss Pareto front, cheapest first: for each of ``bins`` cost
    levels up to the dearest plan, the least-loss plan within it, kept when its loss is below
    every cheaper one's (``lower_bound`` is that of its level)."""
    _check("pareto_front", options, 1.0, bins)
    dearest = sum(max(c for c, _ in layer) for layer in options)
    unit = dearest / bins if dearest > 0 else 1.0
    best, picks = _solve(options, unit, bins, "up")
    relaxed, _ = _solve(options, unit, bins, "down")
    front: list[Selection] = []
    for level in range(bins + 1):
        if not np.isfinite(best[level]):
            continue
        if front and best[level] >= front[-1].loss - 1e-12:
            continue
        indices = _backtrack(options, picks, unit, level, "up")
        selection = _selection(options, indices, float(relaxed[level]))
        if not front or selection.cost > front[-1].cost - 1e-12:
            front.append(selection)
    return front
