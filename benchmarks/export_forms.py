"""Which exact form of a layer each runtime runs fastest: HetConv fused (grouped KxK conv
plus the 1x1 part) or as one dense conv with zero weights, a group conv with its shuffle or as
one dense conv with a permuted block-diagonal weight, each beside the dense conv it replaces
(``keep``). The forms are built alone in the runtime at the layer's input (resnet20_cifar's
three stage widths on Fashion-MNIST's 28x28 images) and timed in turns
(:func:`leanconv.runtimes.forms.runtime_form_timer`, what ``leanconv shrink`` uses to export
each layer).

    python benchmarks/export_forms.py --batch 32 1 --threads 2

Results: ``benchmarks/results/export_forms.json`` and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from leanconv.deploy import fold
from leanconv.deploy.autotune import exact_forms
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info
from leanconv.ops import create_conv
from leanconv.runtimes import RUNTIMES
from leanconv.runtimes.forms import runtime_form_timer
from leanconv.tables import format_table

RESULTS = Path(__file__).parent / "results"
SPECS = ("hetconv:p=2", "hetconv:p=4", "group:g=2,shuffle=1", "group:g=4,shuffle=1")
STAGES = ((16, 28), (32, 14), (64, 7))  # resnet20_cifar's widths and sizes on 28x28 images


def _forms(spec: str, channels: int) -> dict[str, nn.Module]:
    """The folded operator's exact forms, then the dense conv it replaces."""
    torch.manual_seed(0)
    operator = nn.Sequential(create_conv(spec, channels, channels, 3), nn.BatchNorm2d(channels))
    folded = fold(operator.eval(), hetconv="fused", mixconv="split", groupconv="grouped")[0]
    _, forms = exact_forms(folded[0])
    return {**forms, "keep": nn.Conv2d(channels, channels, 3, padding=1).eval()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 1])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = []
    for runtime in RUNTIMES.values():
        for precision in runtime.available_precisions():
            for batch in args.batch:
                timer = runtime_form_timer(runtime, precision, args.threads)
                for spec in SPECS:
                    for channels, size in STAGES:
                        times = timer(spec, _forms(spec, channels),
                                      (batch, channels, size, size))
                        own = next(iter(times))
                        rows.append({"runtime": runtime.name, "precision": precision,
                                     "batch": batch, "spec": spec, "channels": channels,
                                     "size": size, "ms": times,
                                     "fastest": min((f for f in times if f != "keep"),
                                                    key=times.get),
                                     "own_vs_keep": times["keep"] / times[own]})
                        print(rows[-1], flush=True)
    result = {"rows": rows, "machine": machine_info(args.threads),
              "seconds": time.perf_counter() - start, "command": "python " + " ".join(sys.argv)}
    path = RESULTS / "export_forms.json"
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    table = format_table(
        ("runtime", "precision", "batch", "spec", "C x H", "own form over keep",
         "dense over keep", "fastest"),
        ((r["runtime"], r["precision"], r["batch"], r["spec"], f"{r['channels']}x{r['size']}",
          f"{r['own_vs_keep']:.2f}x", f"{r['ms']['keep'] / r['ms']['dense']:.2f}x",
          r["fastest"]) for r in rows), "md")
    atomic_write_text(path.with_suffix(".md"), table + "\n")
    print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
