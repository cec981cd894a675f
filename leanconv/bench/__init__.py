"""Benchmarks: operators and models side by side (their costs, their speed), deployment
latency, the free baselines (the unchanged model in every runtime and precision), machine
ceilings."""

from leanconv.bench.baselines import Baseline, Baselines, free_baselines
from leanconv.bench.compare import compare_convs, compare_ops, zoo_costs
from leanconv.bench.deploy import deploy_latency
from leanconv.bench.models import bench_models
from leanconv.bench.ops import bench_ops
from leanconv.bench.roofline import Ceilings, measure_ceilings

__all__ = ["Baseline", "Baselines", "Ceilings", "bench_models", "bench_ops", "compare_convs",
           "compare_ops", "deploy_latency", "free_baselines", "measure_ceilings", "zoo_costs"]
