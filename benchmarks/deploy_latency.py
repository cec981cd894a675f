"""Deployment latency: PyTorch eager vs folded vs compiled vs onnxruntime (a benchmark).

    .venv/bin/python benchmarks/deploy_latency.py [--threads 2] [--rounds 5]

Same model, same input, same thread count, one process, interleaved rounds; writes
``benchmarks/results/deploy_latency.json`` with the machine's description and prints a
markdown table (the README's).
"""

from __future__ import annotations

import argparse
import json

import torch

from leanconv import create_model
from leanconv.bench import deploy_latency
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info
from leanconv.tables import format_table

CASES = (  # (model, conv, input shape)
    ("mobilenet_v2_100", None, (1, 3, 224, 224)),
    ("resnet20_cifar", "hetconv:p=4", (32, 3, 32, 32)),
    ("mixnet_s", None, (1, 3, 224, 224)),
)
FORMS = ("eager", "folded", "compiled", "onnxruntime")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/deploy_latency.json")
    args = parser.parse_args()
    rows = []
    for name, conv, shape in CASES:
        torch.manual_seed(0)
        result = deploy_latency(create_model(name, conv=conv), shape, args.threads,
                                args.rounds)
        rows.append({"model": name, "conv": conv or "standard", **result})
        print(json.dumps(rows[-1]))
    atomic_write_text(args.out, json.dumps({"machine": machine_info(args.threads),
                                            "results": rows}, indent=2) + "\n")
    table = [[f"{row['model']} ({row['conv']})", "x".join(map(str, row["input_shape"])),
              *(f"{row['ms'][form]:.2f} ms ({row['ms']['eager'] / row['ms'][form]:.2f}x)"
                for form in FORMS)] for row in rows]
    print("\n" + format_table(("model", "input", *FORMS), table, "md"))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
