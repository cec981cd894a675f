"""PyTorch eager vs folded vs compiled vs onnxruntime: one model, one input, one process.

All four run on the same random input with the same thread count, in interleaved rounds
(every form once per round, ``torch.utils.benchmark`` inside each), so that drift on a shared
machine affects them alike; the median of the rounds is reported.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils import benchmark

from leanconv.cost.latency import measure, median_iqr, torch_threads
from leanconv.deploy.compile import compile_frozen
from leanconv.deploy.fold import fold
from leanconv.deploy.onnx_export import export_onnx, onnxruntime_session


def _onnxruntime_ms(session: object, x: torch.Tensor, threads: int,
                    min_run_time: float) -> float:
    feed = {session.get_inputs()[0].name: x.numpy()}
    session.run(None, feed)
    timer = benchmark.Timer("session.run(None, feed)", globals={"session": session, "feed": feed},
                            num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


def deploy_latency(model: nn.Module, input_shape: tuple[int, ...], threads: int,
                   rounds: int = 5, min_run_time: float = 0.2) -> dict[str, object]:
    """Median latency (ms) of each deployment form of ``model`` on ``input_shape``."""
    with torch_threads(threads):
        eager = copy.deepcopy(model).eval()
        folded, report = fold(eager, input_shape, threads=threads)
        x = torch.randn(input_shape)
        compiled, compile_seconds = compile_frozen(folded, x)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.onnx"
            exported = export_onnx(eager, path, input_shape, threads=threads)
            session = onnxruntime_session(path.read_bytes(), threads)
        forms = {"eager": eager, "folded": folded, "compiled": compiled}
        samples: dict[str, list[float]] = {name: [] for name in [*forms, "onnxruntime"]}
        for _ in range(rounds):
            for name, module in forms.items():
                samples[name].append(measure(module, [x], threads, min_run_time)[0])
            samples["onnxruntime"].append(_onnxruntime_ms(session, x, threads, min_run_time))
    medians = {name: median_iqr(values)[0] for name, values in samples.items()}
    return {"input_shape": list(input_shape), "threads": threads, "rounds": rounds,
            "ms": {name: round(ms, 4) for name, ms in medians.items()},
            "onnx_max_abs_diff": exported.max_abs_diff,
            "compile_seconds": round(compile_seconds, 1),
            "fold_choices": [f"{row.name}: {row.action}" for row in report.rows
                             if ":" in row.action]}
