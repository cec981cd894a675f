"""``leanconv.search``: one operator per layer, chosen for a target on this machine.

:mod:`~leanconv.search.candidates` lists the layers and what each may become;
:mod:`~leanconv.search.latency_table` measures each choice folded, as deployed, and caches it;
:mod:`~leanconv.search.correction` calibrates the table's sum in the model;
:mod:`~leanconv.search.sensitivity` measures what each choice costs on the user's images;
:mod:`~leanconv.search.knapsack` solves the choice under a budget;
:mod:`~leanconv.search.target` says what is aimed at; :mod:`~leanconv.search.selection` decides
which plan is taken and checks it by measurement; :mod:`~leanconv.search.pipeline` runs it all,
recovers the accuracy and proves the speed-up (``leanconv.shrink``, ``leanconv shrink``);
:mod:`~leanconv.search.report` holds the result and writes what it found.
"""

from leanconv.search.knapsack import Selection, choose, pareto_front
from leanconv.search.pipeline import shrink
from leanconv.search.report import ShrinkResult
from leanconv.search.target import Target, TargetUnreachable

__all__ = ["Selection", "ShrinkResult", "Target", "TargetUnreachable", "choose",
           "pareto_front", "shrink"]
