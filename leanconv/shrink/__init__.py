"""``leanconv.shrink``: one operator per layer, chosen for a latency target on this machine.

:mod:`leanconv.shrink.knapsack` chooses the per-layer plan: the multiple-choice knapsack of
each layer's candidates (their latency and their measured loss of accuracy) under the target.
"""

from leanconv.shrink.knapsack import Selection, choose, pareto_front

__all__ = ["Selection", "choose", "pareto_front"]
