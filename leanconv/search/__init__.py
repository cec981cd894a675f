"""``leanconv.search``: one operator per layer, chosen for a target on this machine.

:mod:`~leanconv.search.candidates` lists the layers and what each may become;
:mod:`~leanconv.search.latency_table` measures each choice folded, as deployed, and caches it;
:mod:`~leanconv.search.sensitivity` measures what each choice costs on the user's images;
:mod:`~leanconv.search.knapsack` picks the plan under the budget; :mod:`~leanconv.search.shrink`
runs it all, recovers the accuracy and proves the speed-up (``leanconv.shrink``,
``leanconv shrink``); :mod:`~leanconv.search.report` writes what it found.
"""

from leanconv.search.knapsack import Selection, choose, pareto_front
from leanconv.search.shrink import ShrinkResult, Target, TargetUnreachable, shrink

__all__ = ["Selection", "ShrinkResult", "Target", "TargetUnreachable", "choose",
           "pareto_front", "shrink"]
