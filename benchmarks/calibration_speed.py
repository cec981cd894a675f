"""Speed of data-aware weight inheritance: ``convert(..., calibration=images)`` (a benchmark).

    .venv/bin/python benchmarks/calibration_speed.py [--threads 2] [--skip-resnet50]

Cases: resnet20_cifar (1x28x28, 10 classes) to ``hetconv:p=4`` with 1024 calibration
images; torchvision resnet50 with 256 random-normal 3x224x224 images to ``hetconv:p=4`` and
to ``dwsep``. For each: the wall time of the whole ``convert`` call, its calibration part
(the two forwards of ``fit_converted``, original and converted while fitting, with the
BatchNorm re-estimation inside the second), and for scale the time of one plain no-grad
forward of the original model on the same images, and the time spent in the fit rules
themselves (patch gathering, Grams, solves). Writes
``benchmarks/results/calibration_speed.json`` with the machine's description and prints one
JSON line per case. The load average before and after each case
is recorded: on a shared machine other processes slow every number down.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torchvision

from leanconv import convert, create_model
from leanconv.calibration import FitRule
from leanconv.calibration import fit as calibration_fit
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info


def _forward_seconds(model: torch.nn.Module, images: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        model(images)
        return time.perf_counter() - start


class _RuleTimer:
    """Times the fit rules (the solves) inside ``fit_converted``: the rest of the calibration
    is the two forwards, the sampling and the error measurement."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lookup = calibration_fit.fit_rule_for

    def __enter__(self) -> _RuleTimer:
        def timed(layer: torch.nn.Module) -> FitRule:
            rule = self._lookup(layer)

            def fit(module: torch.nn.Module, problem: object) -> str:
                start = time.perf_counter()
                try:
                    return rule.fit(module, problem)
                finally:
                    self.seconds += time.perf_counter() - start

            return FitRule(fit, rule.full_maps)

        calibration_fit.fit_rule_for = timed
        return self

    def __exit__(self, *exc: object) -> None:
        calibration_fit.fit_rule_for = self._lookup


def _case(name: str, model: torch.nn.Module, spec: str, images: torch.Tensor,
          input_shape: tuple[int, ...]) -> dict[str, object]:
    load_before = os.getloadavg()[0]
    forward = _forward_seconds(model, images)
    start = time.perf_counter()
    with _RuleTimer() as timer:
        _, report = convert(model, spec, input_shape=input_shape, calibration=images)
    total = time.perf_counter() - start
    errors = [float(row.weights.split("err ")[1].rstrip(")")) for row in report.rows
              if row.replaced]
    return {
        "model": name, "conv": spec, "images": list(images.shape),
        "replaced": report.replaced, "convert_s": round(total, 2),
        "calibration_s": report.totals["calibration"]["seconds"],
        "fit_rules_s": round(timer.seconds, 2),
        "original_forward_s": round(forward, 2),
        "layer_rel_error_median": round(statistics.median(errors), 4),
        "layer_rel_error_max": round(max(errors), 4),
        "methods": sorted({row.weights.split(" (")[1].split(",")[0] for row in report.rows
                           if row.replaced}),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-resnet50", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/calibration_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    torch.manual_seed(0)
    small = create_model("resnet20_cifar", in_chans=1, num_classes=10).eval()
    rows.append(_case("resnet20_cifar", small, "hetconv:p=4", torch.randn(1024, 1, 28, 28),
                      (1, 1, 28, 28)))
    print(json.dumps(rows[-1]), flush=True)
    if not args.skip_resnet50:
        images = torch.randn(256, 3, 224, 224)
        for spec in ("hetconv:p=4", "dwsep"):
            torch.manual_seed(0)
            big = torchvision.models.resnet50().eval()
            rows.append(_case("resnet50", big, spec, images, (1, 3, 224, 224)))
            print(json.dumps(rows[-1]), flush=True)
    atomic_write_text(args.out, json.dumps({"machine": machine_info(args.threads),
                                            "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
