"""The two plots of ``leanconv compare``: test accuracy against analytic MACs and against
measured latency, one labelled point per operator, error bars across seeds, Pareto front."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from leanconv.io import atomic_write_bytes


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and accuracy (higher),
    sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_plot(rows: list[dict[str, Any]], cost_key: str, cost_label: str, path: Path,
                  title: str) -> None:
    """Scatter accuracy (with std error bars) against ``cost_key``; write a PNG atomically."""
    costs = [r[cost_key] for r in rows]
    accs = [100 * r["test_acc_mean"] for r in rows]
    errors = [100 * r["test_acc_std"] for r in rows]
    figure = Figure(figsize=(7, 4.5), dpi=120)
    axis = figure.subplots()
    axis.errorbar(costs, accs, yerr=errors, fmt="o", capsize=4, color="tab:blue")
    for row, cost, acc in zip(rows, costs, accs, strict=True):
        axis.annotate(row["conv"], (cost, acc), textcoords="offset points", xytext=(5, 5),
                      fontsize=8)
    front = pareto_front(list(zip(costs, accs, strict=True)))
    axis.plot([costs[i] for i in front], [accs[i] for i in front], "--", color="tab:orange",
              label="Pareto front")
    axis.set_xlabel(cost_label)
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.margins(x=0.2, y=0.1)
    axis.legend(loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
