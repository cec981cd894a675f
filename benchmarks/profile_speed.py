"""How long ``leanconv.profile`` itself takes (a benchmark, not a test).

    .venv/bin/python benchmarks/profile_speed.py [--threads 2] [--latency]

Profiles resnet50 and mixnet_l at 1x3x224x224 on meta tensors (the target: under 5 s each on
a 2-core CPU) and, with ``--latency``, with per-module latency replay; writes
``benchmarks/results/profile_speed.json`` with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from leanconv import create_model, profile
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info

MODELS = ("resnet50", "mixnet_l")
META_TARGET_S = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/profile_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name in MODELS:
        model = create_model(name)
        start = time.perf_counter()
        profile(model, (1, 3, 224, 224))
        meta_s = time.perf_counter() - start
        row = {"model": name, "meta_s": round(meta_s, 3),
               "meta_under_target": meta_s < META_TARGET_S}
        if args.latency:
            start = time.perf_counter()
            timed = profile(model, (1, 3, 224, 224), latency=True, threads=args.threads)
            row["latency_profile_s"] = round(time.perf_counter() - start, 1)
            row["model_latency_ms"] = round(timed.totals["latency_ms"], 2)
        results.append(row)
        print(row)
    atomic_write_text(args.out, json.dumps({"machine": machine_info(args.threads),
                                            "results": results}, indent=2))
    return 0 if all(r["meta_under_target"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
