"""What leanconv's per-forward input checks cost (a benchmark, not a test).

    .venv/bin/python benchmarks/input_checks.py [--threads 2] [--rounds 7]

Times a batch-1 forward of ``resnet20_cifar`` (1x3x32x32, the smallest zoo model, where a
fixed per-call cost shows most) with the checks (every leanconv module calls
``check_input`` on its input) and with ``check_input`` replaced by a no-op, in interleaved
rounds; writes ``benchmarks/results/input_checks.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator

import torch

import leanconv
from leanconv.bench import machine_info
from leanconv.cost.latency import make_inputs, measure, median_iqr, torch_threads
from leanconv.io import atomic_write_text


@contextlib.contextmanager
def checks_disabled() -> Iterator[int]:
    """Replace ``check_input`` by a no-op in every leanconv module that imported it."""
    patched = [module for name, module in sys.modules.items()
               if name.startswith("leanconv") and hasattr(module, "check_input")]
    originals = [module.check_input for module in patched]
    for module in patched:
        module.check_input = lambda *args: None
    try:
        yield len(patched)
    finally:
        for module, original in zip(patched, originals, strict=True):
            module.check_input = original


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
            with checks_disabled() as modules:
                samples["without checks"].append(measure(model, x, args.threads, 0.2)[0])
    result = {name: median_iqr(values) for name, values in samples.items()}
    with_ms, without_ms = result["with checks"][0], result["without checks"][0]
    calls = sum(1 for m in model.modules() if m.__module__.startswith("leanconv"))
    record = {"machine": machine_info(args.threads), "model": "resnet20_cifar",
              "input": [1, 3, 32, 32], "patched_modules": modules,
              "leanconv_modules_in_model": calls,
              "with_checks_ms": with_ms, "without_checks_ms": without_ms,
              "overhead_ms": with_ms - without_ms,
              "overhead_fraction": (with_ms - without_ms) / without_ms}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"resnet20_cifar batch 1, {args.threads} threads: with checks {with_ms:.3f} ms, "
          f"without {without_ms:.3f} ms ({100 * record['overhead_fraction']:+.1f}%); "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
