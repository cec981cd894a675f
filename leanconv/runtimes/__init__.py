"""Runtimes: where a model is deployed and in which precision (:mod:`.base`), one module
each (PyTorch, onnxruntime, OpenVINO), registered in :data:`RUNTIMES`; artifacts timed side
by side (:mod:`.timing`)."""

from leanconv.runtimes import onnxruntime_cpu, openvino_cpu, torch_cpu
from leanconv.runtimes.base import (
    RUNTIMES,
    Artifact,
    Runtime,
    check_precision,
    get_runtime,
    load_artifact,
)
from leanconv.runtimes.timing import time_artifacts

__all__ = ["RUNTIMES", "Artifact", "Runtime", "check_precision", "get_runtime",
           "load_artifact", "onnxruntime_cpu", "openvino_cpu", "time_artifacts", "torch_cpu"]
