"""What machine this is: every benchmark result records it beside its numbers, and the
latency table's cache is keyed by it (a measurement holds for one CPU model)."""

from __future__ import annotations

import os
import platform

import torch

from leanconv.kernels.build import native


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int, device: str = "cpu") -> dict[str, object]:
    """CPU model, core count, versions, thread count and device of this run, and whether
    leanconv's C++ kernels were built (:mod:`leanconv.kernels`; without them the operators
    run their PyTorch reference paths)."""
    info: dict[str, object] = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads, "device": device,
        "torch": torch.__version__, "python": platform.python_version(),
        "native_kernels": native() is not None,
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info
