"""What leanconv's per-forward input checks cost (a benchmark, not a test).

    .venv/bin/python benchmarks/input_checks.py [--threads 2] [--rounds 7]

Times a batch-1 forward of ``resnet20_cifar`` (1x3x32x32, the smallest zoo model, where a
fixed per-call cost shows most) with the checks (every leanconv module calls
``check_input`` on its input) and with ``check_input`` replaced by a no-op, in interleaved
rounds. The difference is within the run-to-run noise of a whole forward, so the script also
counts the calls per forward and times one ``check_input`` call alone: calls x per-call time
is the overhead. Writes ``benchmarks/results/input_checks.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator

import torch
from torch.utils import benchmark

import leanconv
from leanconv._validate import check_input
from leanconv.cost.latency import make_inputs, measure, median_iqr, torch_threads
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info


@contextlib.contextmanager
def checks_replaced(replacement: Callable[..., None]) -> Iterator[int]:
    """``check_input`` replaced by ``replacement`` in every leanconv module that imported it."""
    patched = [module for name, module in sys.modules.items()
               if name.startswith("leanconv") and hasattr(module, "check_input")]
    originals = [module.check_input for module in patched]
    for module in patched:
        module.check_input = replacement
    try:
        yield len(patched)
    finally:
        for module, original in zip(patched, originals, strict=True):
            module.check_input = original


def calls_per_forward(model: torch.nn.Module, x: list[torch.Tensor]) -> int:
    calls = []
    with checks_replaced(lambda *args: calls.append(1)), torch.inference_mode():
        model(*x)
    return len(calls)


def one_check_us(x: torch.Tensor, threads: int) -> float:
    timer = benchmark.Timer(stmt="check_input('Op', x, 3)",
                            globals={"check_input": check_input, "x": x}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=0.5).median * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/input_checks.json")
    args = parser.parse_args()
    model = leanconv.create_model("resnet20_cifar").eval()
    x = make_inputs([(1, 3, 32, 32)], "cpu", torch.float32, False)
    samples: dict[str, list[float]] = {"with checks": [], "without checks": []}
    with torch_threads(args.threads):
        for _ in range(args.rounds):
            samples["with checks"].append(measure(model, x, args.threads, 0.2)[0])
            with checks_replaced(lambda *args: None) as modules:
                samples["without checks"].append(measure(model, x, args.threads, 0.2)[0])
    result = {name: median_iqr(values) for name, values in samples.items()}
    with_ms, without_ms = result["with checks"][0], result["without checks"][0]
    calls = calls_per_forward(model, x)
    per_call_us = one_check_us(x[0], args.threads)
    record = {"machine": machine_info(args.threads), "model": "resnet20_cifar",
              "input": [1, 3, 32, 32], "patched_modules": modules,
              "with_checks_ms": with_ms, "without_checks_ms": without_ms,
              "measured_difference_ms": with_ms - without_ms,
              "check_calls_per_forward": calls, "one_check_us": per_call_us,
              "overhead_ms": calls * per_call_us / 1e3,
              "overhead_fraction": calls * per_call_us / 1e3 / with_ms}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"resnet20_cifar batch 1, {args.threads} threads: with checks {with_ms:.3f} ms, "
          f"without {without_ms:.3f} ms; {calls} checks per forward x {per_call_us:.2f} us = "
          f"{record['overhead_ms'] * 1e3:.0f} us ({100 * record['overhead_fraction']:.1f}% "
          f"of the forward); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
