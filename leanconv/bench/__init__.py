"""Benchmarks (run by ``benchmarks/*.py``): machine description and deployment latency."""

from leanconv.bench.deploy import deploy_latency
from leanconv.bench.machine import cpu_model, machine_info

__all__ = ["cpu_model", "deploy_latency", "machine_info"]
