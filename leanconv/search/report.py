"""What ``leanconv shrink`` writes: ``plan.json``, ``model.pt``, ``report.md``, ``report.json``
and ``pareto.png`` (every file atomically: a temporary file, then a rename)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leanconv.io import atomic_write_bytes, atomic_write_text
from leanconv.tables import format_table


@dataclass
class ShrinkResult:
    """What :func:`leanconv.shrink` chose, predicted and measured (``report.json`` holds it)."""

    model: str
    target: dict[str, Any]
    setting: dict[str, Any]
    plan: dict[str, str]
    layers: list[dict[str, Any]]
    predicted_ms: float
    measured_ms: dict[str, float]
    speedup: float
    macs: dict[str, int]
    accuracy: dict[str, float | None]
    selection: dict[str, float]
    checks: list[dict[str, float]]
    pareto: list[dict[str, float]]
    table: dict[str, Any]
    seconds: dict[str, float]
    files: dict[str, str] = field(default_factory=dict)
    # where the data's labels are not the model's classes: why (``no_accuracy``), and the
    # shrunk model's agreement with the original instead ({"calibrated"/"fine_tuned":
    # {"agreement": top-1 share, "kl": mean KL, "images": n}}), the accuracies all None
    no_accuracy: str | None = None
    agreement: dict[str, dict[str, float] | None] = field(default_factory=dict)
    # the free baselines (:meth:`leanconv.bench.baselines.Baselines.to_json`), and the
    # deployed result: the runtime's artifact, its test accuracy (or agreement), its
    # measured speed-up, the free baseline it was timed with and which one is the answer
    baselines: dict[str, Any] | None = None
    deployed: dict[str, Any] | None = None

    @property
    def prediction_error(self) -> float:
        """The table's predicted speed-up of the chosen plan over the measured one, less 1
        (speed-ups, not milliseconds: the table and the final measurement run minutes apart
        on a machine whose absolute times drift)."""
        return self.table["total_ms"] / self.predicted_ms / self.speedup - 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "prediction_error": round(self.prediction_error, 4)}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _quality_rows(result: ShrinkResult) -> list[list[str]]:
    """Test accuracy, or where the labels are not the model's classes, agreement with the
    original (top-1 share and KL divergence on the test split)."""
    acc = result.accuracy
    if result.no_accuracy is None:
        return [["test accuracy", _percent(acc["original"]), _percent(acc["fine_tuned"])],
                ["test accuracy before fine-tuning (calibrated)", "",
                 _percent(acc["calibrated"])]]
    calibrated, tuned = result.agreement.get("calibrated"), result.agreement.get("fine_tuned")
    return [["top-1 agreement with the original (test split)", "100.00%",
             _percent(tuned and tuned["agreement"])],
            ["KL divergence from the original (test split)", "0",
             "-" if tuned is None else f"{tuned['kl']:.4f}"],
            ["agreement before fine-tuning (calibrated): top-1, KL", "",
             f"{_percent(calibrated['agreement'])}, {calibrated['kl']:.4f}"]]


def _calibration(result: ShrinkResult) -> list[str]:
    """The table's in-context calibration, as lines (none for a MACs target)."""
    plans = result.table.get("calibration") or {}
    if not plans:
        return []
    errors = sorted(abs(row["fitted_speedup"] / row["measured_speedup"] - 1)
                    for row in plans.values())
    raw = sorted(abs(row["raw_speedup"] / row["measured_speedup"] - 1)
                 for row in plans.values())
    shares = ", ".join(f"{spec} {value:+.3f}" for spec, value in
                       result.table["correction"].items())
    return [f"The table was calibrated in the model on {len(plans)} measured plans: "
            f"in-context share of each layer's original latency per spec: {shares}; cost "
            f"of mixing specs {result.table['mixed_ms']:.3f} ms. Fitted speed-ups within "
            f"{100 * errors[-1]:.1f}% of measured (the table alone: {100 * raw[-1]:.1f}%). "
            f"'ms before / after': the layer timed alone; 'in the model': with the "
            f"correction.", ""]


def _checks(result: ShrinkResult) -> list[str]:
    """The plans measured before training, as lines (none for a MACs target)."""
    if not result.checks:
        return []
    steps = "; ".join(f"plan {i + 1}"
                      + (" (a calibration plan measured at the target)"
                         if c.get("from_measurements") else "")
                      + f": predicted {c['predicted_speedup']:.2f}x, measured "
                        f"{c['measured_speedup']:.2f}x" for i, c in enumerate(result.checks))
    return [f"Measured before training (folded, data-free weights, target "
            f"{result.checks[0]['wanted_speedup']:.2f}x): {steps}.", ""]


def _baselines(result: ShrinkResult) -> list[str]:
    """The free baselines: the unchanged model in every runtime and precision."""
    if not result.baselines:
        return []
    rows = result.baselines["rows"]
    measure = "agreement" if result.no_accuracy else "accuracy"
    return ["## Free baselines: the unchanged model in every runtime", "",
            format_table(["runtime", "precision", "ms", "speed-up over torch fp32",
                          "speed-up in its runtime", f"test {measure}"],
                         [[row["runtime"], row["precision"] + (f" ({row['detail']})"
                                                                if row.get("detail") else ""),
                           f"{row['ms']:.3f}", f"{row['speedup']:.2f}x",
                           f"{row['speedup_in_runtime']:.2f}x", _percent(row[measure])]
                          for row in rows], "md"),
            "", *(["Not measured: " + "; ".join(f"{k}: {v}" for k, v in
                                                 result.baselines["skipped"].items()) + ".", ""]
                  if result.baselines.get("skipped") else []),
            "## The shrunk model", ""]


def _deployed(result: ShrinkResult) -> list[str]:
    """The runtime's artifact against the best free baseline of the runtime."""
    deployed = result.deployed
    if not deployed:
        return []
    measure = "agreement" if result.no_accuracy else "accuracy"
    line = (f"Deployed as {deployed['artifact']}: test {measure} "
            f"{_percent(deployed[measure])}, {deployed['speedup']:.2f}x over the original "
            f"in {result.setting['runtime']} {result.setting['precision'][0]}, timed in "
            f"turns with it")
    baseline = deployed.get("baseline")
    if baseline:
        line += (f" and with the fastest free baseline of the runtime that is no less "
                 f"accurate, {baseline['artifact']} ({baseline['speedup']:.2f}x, "
                 f"{_percent(baseline[measure])})")
    line += "."
    if deployed["answer"] == "free baseline":
        line += (" **The free baseline is the answer**: it meets the target (or is as fast) "
                 "and loses no more, so deploy the unchanged model in it"
                 + (" (the artifact written is that model)."
                    if result.setting.get("runtime", "torch") != "torch"
                    else "; model.pt is the shrunk model)."))
    return [line, ""]


def markdown(result: ShrinkResult) -> str:
    """The report as Markdown: the free baselines, the outcome, then one row per layer."""
    setting, measured = result.setting, result.measured_ms
    target = result.target
    kind = {"speedup": "speed-up", "latency_ms": "latency (ms)", "macs_ratio": "MACs share"}
    replaced = sum(row["new"] != "keep" for row in result.layers)
    predicted = result.table["total_ms"] / result.predicted_ms
    runtime = (f"{setting['runtime']} {' + '.join(setting['precision'])}"
               if "runtime" in setting else "torch fp32")
    lines = [
        f"# leanconv shrink: {result.model}",
        "",
        *_baselines(result),
        f"Runtime {runtime}. Target: {kind[target['kind']]} {target['value']:g}, input "
        f"{'x'.join(map(str, setting['input_shape']))}, {setting['threads']} threads, "
        f"{'channels_last' if setting['channels_last'] else 'contiguous'}; data "
        f"{setting['data']} ({setting['calib_images']} calibration, "
        f"{setting['held_out_images']} held-out images), {setting['epochs']} epoch(s) of "
        f"fine-tuning with distillation.",
        "",
        format_table(["", "original", "shrunk"], [
            [f"latency in {runtime.split(' + ')[0]}, measured side by side (ms)",
             f"{measured['original']:.3f}",
             f"{measured['shrunk']:.3f}"],
            ["speed-up (measured)", "1.00x", f"{result.speedup:.2f}x"],
            ["speed-up predicted by the latency table", "1.00x",
             f"{predicted:.2f}x ({100 * (predicted / result.speedup - 1):+.1f}%)"],
            ["MACs", f"{result.macs['original']:,}", f"{result.macs['shrunk']:,}"],
            *_quality_rows(result),
        ], "md"),
        "",
        *_deployed(result),
        *([] if result.no_accuracy is None else
          [f"No accuracy: {result.no_accuracy}; the shrunk model is judged by how closely it "
           f"follows the original instead.", ""]),
        f"{replaced} of {len(result.layers)} layers replaced. Summed sensitivity (KL) "
        f"{result.selection['loss']:.4f}; no plan within the budget is below "
        f"{result.selection['lower_bound']:.4f}. Latency table: {result.table['entries']} "
        f"entries, {result.table['reused']} reused from the cache. Time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()) + ".",
        "",
        *_calibration(result),
        *_checks(result),
        format_table(["layer", "old", "new", "ms before", "ms after", "ms after in the model",
                      "MACs before", "MACs after", "sensitivity (KL)"],
                     [[row["name"], row["old"], row["new"], f"{row['ms_before']:.4f}",
                       f"{row['ms_after']:.4f}", f"{row['ms_after_in_model']:.4f}",
                       f"{row['macs_before']:,}",
                       f"{row['macs_after']:,}", f"{row['sensitivity']:.4f}"]
                      for row in result.layers], "md"),
        "",
    ]
    return "\n".join(lines)


def pareto_png(result: ShrinkResult) -> bytes:
    """Predicted loss against predicted cost of the Pareto plans, the chosen plan and the
    target marked."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    macs = result.target["kind"] == "macs_ratio"
    figure = Figure(figsize=(6, 4), dpi=120)
    axes = figure.add_subplot()
    xs = [p["cost"] / (1e6 if macs else 1) for p in result.pareto]
    axes.plot(xs, [p["loss"] for p in result.pareto], "o-", ms=3, label="Pareto plans")
    chosen_x = result.macs["shrunk"] / 1e6 if macs else result.predicted_ms
    axes.plot([chosen_x], [result.selection["loss"]], "r*", ms=12, label="chosen plan")
    axes.axvline(result.target["budget"] / (1e6 if macs else 1), color="gray", ls="--",
                 label="target")
    lowered = [c["budget_ms"] for c in result.checks if c["budget_ms"] < result.target["budget"]]
    for i, budget in enumerate(lowered):
        axes.axvline(budget, color="orange", ls=":",
                     label="budget lowered below a plan that missed" if i == 0 else None)
    axes.set_xlabel("predicted MACs (M)" if macs else "predicted latency, folded (ms)")
    axes.set_ylabel("predicted loss (summed KL to the original)")
    axes.set_title(f"leanconv shrink: {result.model}", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_outputs(result: ShrinkResult, out: Path, model_file: Path,
                  artifact: Any = None) -> dict[str, str]:
    """Write the five files into ``out``, and ``artifact`` (a runtime's
    :class:`leanconv.runtimes.Artifact`) as ``model.onnx`` or ``model.xml`` with its
    ``.bin``; their paths by name."""
    files = {name: str(out / name) for name in ("plan.json", "model.pt", "report.md",
                                                 "report.json", "pareto.png")}
    atomic_write_text(files["plan.json"], json.dumps(result.plan, indent=2) + "\n")
    atomic_write_bytes(files["model.pt"], model_file.read_bytes())
    if artifact is not None:
        for path in artifact.save(out / f"model{artifact.suffix}"):
            files[path.name] = str(path)
    result.files = files
    payload: dict[str, Any] = result.to_dict()
    atomic_write_text(files["report.json"], json.dumps(payload, indent=2) + "\n")
    atomic_write_text(files["report.md"], markdown(result))
    atomic_write_bytes(files["pareto.png"], pareto_png(result))
    return files
