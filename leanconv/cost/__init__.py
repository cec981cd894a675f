"""Cost analysis: parameters, analytic vs executed MACs, FLOPs, memory access (ShuffleNet V2's
MAC), ShuffleNet V2's G1-G4 indicators and measured latency, per layer and per model.

This package measures a model it is given; it builds, loads and converts none (that is
:mod:`leanconv.bench.compare`, above it)."""

from leanconv.cost.analytic import ANALYTIC_MACS, register_analytic_macs
from leanconv.cost.counting import count_params
from leanconv.cost.op_costs import OP_COSTS, OpCost, register_op_cost
from leanconv.cost.profile import profile
from leanconv.cost.report import Profile

__all__ = ["ANALYTIC_MACS", "OP_COSTS", "OpCost", "Profile", "count_params", "profile",
           "register_analytic_macs", "register_op_cost"]
