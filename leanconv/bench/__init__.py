"""Benchmarks: operators and models side by side, deployment latency, machine ceilings."""

from leanconv.bench.deploy import deploy_latency
from leanconv.bench.machine import cpu_model, machine_info
from leanconv.bench.models import bench_models
from leanconv.bench.ops import bench_ops
from leanconv.bench.roofline import Ceilings, measure_ceilings

__all__ = ["Ceilings", "bench_models", "bench_ops", "cpu_model", "deploy_latency",
           "machine_info", "measure_ceilings"]
