"""``leanconv bench``: operators vs the kernels they replace, models vs torchvision / timm,
measured side by side (:mod:`leanconv.bench`); a benchmark, so minutes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from leanconv.cli._args import positive_int


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="time operators against the kernels they replace, or models against "
                      "torchvision and timm (a benchmark: minutes)",
        description="Time operators against the PyTorch kernels they replace ('ops': batch 1, "
                    "8 and 32, NCHW and channels_last, inference and training step, with the "
                    "roofline of this machine), or leanconv's networks against torchvision's "
                    "and timm's ('models'), side by side in one process; writes JSON with the "
                    "machine's description.")
    parser.add_argument("what", choices=("ops", "models"))
    parser.add_argument("--threads", type=positive_int, help="CPU threads (default: torch's)")
    parser.add_argument("--batches", type=positive_int, nargs="+",
                        help="batch sizes (default: ops 1 8 32, models 1 32)")
    parser.add_argument("--layouts", nargs="+", choices=("nchw", "channels_last"),
                        default=["nchw", "channels_last"])
    parser.add_argument("--modes", nargs="+", choices=("inference", "training"),
                        default=["inference", "training"], help="ops only")
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--models", nargs="+", metavar="NAME", help="models only: these cases")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/bench_WHAT.json)")
    parser.set_defaults(func=run)


def _suffixed(value: object, suffix: str) -> str | None:
    return None if value is None else f"{value}{suffix}"


def run(args: argparse.Namespace) -> str:
    import torch

    from leanconv.bench import bench_models, bench_ops, measure_ceilings
    from leanconv.io import atomic_write_text
    from leanconv.machine import machine_info
    from leanconv.tables import format_table

    threads = args.threads or torch.get_num_threads()
    record: dict[str, object] = {"machine": machine_info(threads)}
    if args.what == "ops":
        ceilings = measure_ceilings(threads)
        rows = bench_ops(ceilings, threads=threads, batches=tuple(args.batches or (1, 8, 32)),
                         layouts=tuple(args.layouts), modes=tuple(args.modes),
                         rounds=args.rounds)
        record["ceilings"] = {"gflops": round(ceilings.gflops, 1),
                              "gbps": round(ceilings.gbps, 2)}
        header = ["case", "batch", "layout", "mode", "ms", "speedup", "FLOPs red.",
                  "realization", "bound ms", "of bound"]
        table = [[r["case"], r["batch"], r["layout"], r["mode"], r["ms"],
                  _suffixed(r.get("speedup"), "x"), _suffixed(r.get("flops_reduction"), "x"),
                  r.get("realization"), r["bound_ms"], r["of_bound"]] for r in rows]
        lines = [f"ceilings: {ceilings.gflops:.1f} GFLOP/s (fp32 matmul), "
                 f"{ceilings.gbps:.2f} GB/s (copy), {threads} threads"]
    else:
        rows = bench_models(threads=threads, batches=tuple(args.batches or (1, 32)),
                            layouts=tuple(args.layouts), rounds=args.rounds,
                            models=tuple(args.models) if args.models else None)
        header = ["model", "conv", "reference", "batch", "layout", "leanconv ms",
                  "reference ms", "ratio"]
        table = [[r["model"], r["conv"], r["reference"], r["batch"], r["layout"], r["ms"],
                  r["reference_ms"], r["ratio"]] for r in rows]
        lines = []
    record["results"] = rows
    out = args.out or f"benchmarks/results/bench_{args.what}.json"
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    return "\n".join([*lines, format_table(header, table), f"wrote {out}"])
