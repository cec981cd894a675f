"""Every torchvision classification model through leanconv (a benchmark, not a test).

    .venv/bin/python benchmarks/torchvision_sweep.py [--models NAME ...] [--no-shrink]
        [--threads 1] [--redo]

For each model of ``torchvision.models.list_models(module=torchvision.models)``, random
weights (leanconv never downloads any), at the smallest square input it takes (the first of
:data:`SIZES` its forward accepts):

1. **convert** with ``hetconv:p=4`` and with ``dwsep`` (``leanconv.convert`` with the input
   given, default policy): how many convs were replaced, and for every kept one its reason
   (counted by kind); a conversion that replaces nothing must say why;
2. **fold** each converted model (``leanconv.fold``) and check it against the unfolded one;
3. **export** each converted model to ONNX (``leanconv.export_onnx``, folded) and check
   onnxruntime against PyTorch (the largest difference relative to the output's scale);
4. **shrink** the model (``leanconv.shrink --macs-ratio 0.6 --epochs 0``) on a folder of
   unlabeled images (``images:DIR``, 64 random PNGs), batch 1.

Models run from the smallest to the largest (parameters); results go to
``benchmarks/results/torchvision_sweep.json`` after every model (a re-run skips the models
already there unless ``--redo``), and the table to ``torchvision_sweep.md`` beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image

import leanconv
from leanconv.cost.latency import torch_threads
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info
from leanconv.search.target import TargetUnreachable
from leanconv.tables import format_table

SPECS = ("hetconv:p=4", "dwsep")
SIZES = (32, 48, 64, 96, 128, 160, 192, 224, 299)
RELATIVE_TOLERANCE = 1e-4  # |onnxruntime - PyTorch| / max |PyTorch output|
RESULTS = Path(__file__).parent / "results"


def smallest_input(model: torch.nn.Module) -> int:
    """The first of :data:`SIZES` that ``model``'s eval-mode forward takes."""
    for size in SIZES:
        try:
            with torch.no_grad():
                model(torch.randn(1, 3, size, size))
            return size
        except (RuntimeError, ValueError, AssertionError, IndexError):
            continue
    raise ValueError(f"none of the sizes {SIZES} fits")


def _relative(diff: float, reference: torch.Tensor) -> float:
    return diff / max(float(reference.abs().max()), 1e-12)


def _convert(model: torch.nn.Module, spec: str, shape: tuple[int, ...], folder: Path
             ) -> dict[str, Any]:
    """Convert, fold and export ``model`` with ``spec`` at ``shape``: the record of it."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted, report = leanconv.convert(model, spec, input_shape=shape)
    kept = report.kept()
    record: dict[str, Any] = {
        "convs": len(report.rows), "replaced": report.replaced, "kept": dict(kept),
        "unexplained": sum(not row.replaced and not row.reason for row in report.rows),
        "nothing_replaced": report.nothing_replaced(),
        "warned": any("nothing replaced" in str(w.message) for w in caught),
        "macs_ratio": round(report.totals["macs_analytic_after"]
                            / report.totals["macs_analytic_before"], 4),
        "convert_s": round(time.perf_counter() - start, 2)}
    if not report.replaced:
        return record
    x = torch.randn(shape)
    converted.eval()
    with torch.no_grad():
        expected = converted(x)
        start = time.perf_counter()
        folded = leanconv.fold(converted, shape)[0]
        record["fold_s"] = round(time.perf_counter() - start, 2)
        record["fold_rel_diff"] = _relative(float((folded(x) - expected).abs().max()), expected)
    start = time.perf_counter()
    result = leanconv.export_onnx(converted, folder / f"{spec.replace(':', '_')}.onnx", shape,
                                  atol=float("inf"))
    record["export_s"] = round(time.perf_counter() - start, 2)
    record["onnx_rel_diff"] = (None if result.max_abs_diff is None
                               else _relative(result.max_abs_diff, expected))
    record["onnx_parity"] = (record["onnx_rel_diff"] is not None
                             and record["onnx_rel_diff"] <= RELATIVE_TOLERANCE)
    return record


def _shrink(name: str, size: int, images: Path, folder: Path, threads: int) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        result = leanconv.shrink(f"torchvision:{name}", out=str(folder / "shrink"),
                                 macs_ratio=0.6, epochs=0, data=f"images:{images}",
                                 input_size=(3, size, size), batch=1, threads=threads,
                                 calib_images=32, held_out_images=16, progress=False)
    except TargetUnreachable as error:
        return {"outcome": "unreachable", "why": str(error).splitlines()[0],
                "seconds": round(time.perf_counter() - start, 1)}
    except ValueError as error:
        return {"outcome": "refused", "why": str(error).splitlines()[0],
                "seconds": round(time.perf_counter() - start, 1)}
    except Exception as error:  # recorded, the sweep goes on
        return {"outcome": "error", "why": f"{type(error).__name__}: {error}"[:400],
                "trace": traceback.format_exc()[-1500:],
                "seconds": round(time.perf_counter() - start, 1)}
    calibrated = result.agreement["calibrated"]
    return {"outcome": "shrunk", "replaced": sum(r["new"] != "keep" for r in result.layers),
            "layers": len(result.layers),
            "macs_ratio": round(result.macs["shrunk"] / result.macs["original"], 4),
            "speedup": round(result.speedup, 3), "agreement": round(calibrated["agreement"], 4),
            "kl": round(calibrated["kl"], 6), "no_accuracy": result.no_accuracy,
            "seconds": round(time.perf_counter() - start, 1)}


def sweep_model(name: str) -> dict[str, Any]:
    """One model's record: its input and each spec's conversion, fold and export."""
    start = time.perf_counter()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's notes on random initialisation
        model, _ = leanconv.load_model(f"torchvision:{name}")
    model.eval()
    record: dict[str, Any] = {"params": sum(p.numel() for p in model.parameters())}
    try:
        record["input"] = size = smallest_input(model)
    except ValueError as error:  # recorded, the sweep goes on
        return {**record, "input": None, "error": str(error),
                "seconds": round(time.perf_counter() - start, 1)}
    shape = (1, 3, size, size)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in SPECS:
            try:
                record[spec] = _convert(model, spec, shape, Path(tmp))
            except Exception as error:  # recorded, the sweep goes on
                record[spec] = {"error": f"{type(error).__name__}: {error}"[:400],
                                "trace": traceback.format_exc()[-1500:]}
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def make_images(folder: Path, count: int = 64) -> Path:
    """``count`` random 96x96 RGB PNGs in two nested folders: unlabeled images."""
    rng = np.random.default_rng(0)
    for i in range(count):
        sub = folder / ("a" if i % 2 else "b/c")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(sub / f"{i}.png")
    return folder


def _converted_cell(record: dict[str, Any]) -> str:
    if "error" in record:
        return f"ERROR {record['error'][:60]}"
    if not record["replaced"]:
        kept = ", ".join(f"{n} {kind}" for kind, n in record["kept"].items())
        return f"0/{record['convs']}: kept ({kept})"
    parity = "parity" if record["onnx_parity"] else "NO PARITY"
    return (f"{record['replaced']}/{record['convs']}, MACs x{record['macs_ratio']:.2f}, ONNX "
            f"{parity} ({record['onnx_rel_diff']:.1e})")


def _shrink_cell(record: dict[str, Any] | None) -> str:
    if record is None:
        return "not run"
    if record["outcome"] == "error":
        return f"ERROR {record['why'][:60]}"
    if record["outcome"] != "shrunk":
        return f"{record['outcome']} ({record['seconds']:.0f} s)"
    return (f"{record['replaced']}/{record['layers']} layers, MACs x{record['macs_ratio']:.2f}, "
            f"{record['speedup']:.2f}x, agreement {100 * record['agreement']:.0f}% "
            f"({record['seconds']:.0f} s)")


def _conversions(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each spec's record of a model (an error for every spec when no input fitted)."""
    return {spec: record.get(spec, {"error": record.get("error")}) for spec in SPECS}


def table(results: dict[str, Any]) -> str:
    """The Markdown table of the sweep, with its totals."""
    rows = []
    models = {name: {**r, **_conversions(r)} for name, r in results["models"].items()}
    for name, r in models.items():
        rows.append([name, f"{r['params'] / 1e6:.1f}M", str(r["input"]),
                     *(_converted_cell(r[spec]) for spec in SPECS),
                     _shrink_cell(r.get("shrink")), f"{r['seconds']:.0f}"])
    text = format_table(["model", "params", "input", *SPECS, "shrink --macs-ratio 0.6",
                         "s"], rows, "md")
    converted = [(n, s) for n, r in models.items() for s in SPECS
                 if "error" not in r[s] and r[s]["replaced"]]
    explained = [(n, s) for n, r in models.items() for s in SPECS
                 if "error" not in r[s] and not r[s]["replaced"] and r[s]["nothing_replaced"]
                 and not r[s]["unexplained"]]
    parity = sum(models[n][s]["onnx_parity"] for n, s in converted)
    either = sum(any("error" not in r[s] and r[s]["replaced"] for s in SPECS)
                 for r in models.values())
    shrunk = Counter(r["shrink"]["outcome"] for r in models.values() if r.get("shrink"))
    return (f"{text}\n\n{len(models)} models; conversions: {len(converted)} converted, "
            f"{len(explained)} replaced nothing and said why, "
            f"{2 * len(models) - len(converted) - len(explained)} neither (errors); "
            f"{either} models converted by at least one spec; ONNX parity (relative "
            f"difference <= {RELATIVE_TOLERANCE:g}) in {parity} of {len(converted)} converted; "
            f"shrink: {dict(shrunk)}.\n")


def _parameters(name: str) -> int:
    """The parameters of torchvision's ``name``, counted on the meta device where its
    builder allows (RegNet's initialisation copies data: built on the CPU)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                model = torchvision.models.get_model(name, weights=None)
        except NotImplementedError:
            model = torchvision.models.get_model(name, weights=None)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="these torchvision models only")
    parser.add_argument("--no-shrink", action="store_true", help="convert and export only; a "
                        "later run without it adds the shrink step to the models recorded")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--redo", action="store_true", help="run models already recorded")
    parser.add_argument("--out", default=str(RESULTS / "torchvision_sweep.json"))
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {"models": {}}
    results["machine"] = machine_info(args.threads)
    results["command"] = " ".join(["python", *sys.argv])
    names = args.models or torchvision.models.list_models(module=torchvision.models)
    sizes = {name: _parameters(name) for name in names}
    with tempfile.TemporaryDirectory() as tmp, torch_threads(args.threads):
        images = make_images(Path(tmp) / "images")
        for name in sorted(names, key=sizes.get):
            record = None if args.redo else results["models"].get(name)
            if record is not None and (args.no_shrink or "shrink" in record):
                continue
            print(f"{name} ({sizes[name] / 1e6:.1f}M params)", flush=True)
            record = record or sweep_model(name)
            if not args.no_shrink and record["input"] is not None:
                with tempfile.TemporaryDirectory() as folder:
                    record["shrink"] = _shrink(name, record["input"], images, Path(folder),
                                               args.threads)
            results["models"][name] = record
            results["models"] = dict(sorted(results["models"].items(),
                                            key=lambda item: item[1]["params"]))
            atomic_write_text(out, json.dumps(results, indent=1) + "\n")
            atomic_write_text(out.with_suffix(".md"), table(results))
            print(f"  {json.dumps(results['models'][name])[:300]}", flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
