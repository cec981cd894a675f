"""The result of :func:`leanconv.profile`: records, totals and their renderings."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from leanconv.io import atomic_write_text
from leanconv.tables import format_table, records_table

TOTAL_KEYS = ("params", "macs_analytic", "macs_executed", "flops", "memory_access",
              "memory_access_bytes", "latency_ms", "latency_iqr_ms")
CSV_KEYS = ("name", "type", "input_shape", "output_shape", "params", "macs_analytic",
            "macs_executed", "flops", "memory_access", "memory_access_bytes", "intensity",
            "kernels", "latency_ms", "latency_iqr_ms")


def _millions(value: float) -> str:
    return f"{value / 1e6:.2f}"


@dataclass
class Profile:
    """Per-layer and per-module costs of one forward pass.

    ``layers``: one record per module that ran ops itself (leaf layers, and a module's own
    ops such as a residual add or a concat, typed ``"Block (own ops)"``); they add up to the
    totals. ``modules``: one record per module subtree (``""`` is the whole model).
    """

    modules: list[dict[str, Any]]
    layers: list[dict[str, Any]]
    indicators: dict[str, Any]
    input_shape: tuple[int, ...]
    _by_name: dict[str, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {record["name"]: record for record in self.modules}

    @property
    def totals(self) -> dict[str, Any]:
        """Whole-model ``params, macs_analytic, macs_executed, flops, memory_access,
        memory_access_bytes`` (+ ``latency_ms, latency_iqr_ms`` when measured)."""
        root = self._by_name[""]
        return {key: root[key] for key in TOTAL_KEYS if key in root}

    @property
    def unknown_ops(self) -> dict[str, int]:
        """Ops without a cost formula (their FLOPs are not counted), with their counts."""
        return dict(self._by_name[""]["unknown_ops"])

    def ran(self, name: str) -> bool:
        """Whether module ``name`` ran in the profiled forward (an auxiliary head that only
        runs in training mode, say, did not)."""
        return name in self._by_name

    def module(self, name: str) -> dict[str, Any]:
        """The subtree record of module ``name``."""
        if name not in self._by_name:
            raise ValueError(f"Profile.module: no module named {name!r}; e.g. "
                             f"{', '.join(list(self._by_name)[1:6])}")
        return self._by_name[name]

    def rows(self, depth: int | None = None) -> list[dict[str, Any]]:
        """``layers`` (depth None) or the module subtrees at ``depth`` (0: the whole model)."""
        if depth is None:
            return self.layers
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"Profile: depth={depth!r} is invalid; expected None or an int >= 0")
        return [r for r in self.modules
                if (r["name"].count(".") + 1 if r["name"] else 0) == depth]

    def _cells(self, depth: int | None) -> tuple[list[str], list[list[str]]]:
        totals, timed = self.totals, "latency_ms" in self.totals
        header = ["name", "type", "output", "params", "MMACs analytic", "MMACs executed",
                  "M elements moved", "FLOP/B", "% MACs", "% memory"]
        if timed:
            header += ["latency ms", "IQR ms"]
        body = []
        for r in [*self.rows(depth), {**self._by_name[""], "name": "TOTAL"}]:
            cells = [r["name"] or "(model)", r["type"], "x".join(map(str, r["output_shape"])),
                     f"{r['params']:,}", _millions(r["macs_analytic"]),
                     _millions(r["macs_executed"]), _millions(r["memory_access"]),
                     f"{r['intensity']:.1f}",
                     f"{100 * r['macs_executed'] / max(1, totals['macs_executed']):.1f}",
                     f"{100 * r['memory_access'] / max(1, totals['memory_access']):.1f}"]
            if timed:
                cells += [f"{r['latency_ms']:.3f}" if "latency_ms" in r else "-",
                          f"{r['latency_iqr_ms']:.3f}" if "latency_iqr_ms" in r else "-"]
            body.append(cells)
        return header, body

    def _warning(self) -> str:
        unknown = self.unknown_ops
        if not unknown:
            return ""
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(unknown.items()))
        return f"WARNING: no FLOP formula for {listed}: their FLOPs are not counted"

    def table(self, depth: int | None = None) -> str:
        """A text table (layers, or modules at ``depth``) with a TOTAL row and % columns."""
        return "\n".join(filter(None, [format_table(*self._cells(depth)), self._warning()]))

    def to_markdown(self, depth: int | None = None) -> str:
        """The same table in Markdown."""
        return "\n".join(filter(None, [format_table(*self._cells(depth), "md"),
                                       self._warning()]))

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable."""
        return {"input_shape": list(self.input_shape), "totals": self.totals,
                "unknown_ops": self.unknown_ops, "layers": self.layers,
                "modules": self.modules, "indicators": self.indicators}

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=list))

    def to_csv_text(self, depth: int | None = None) -> str:
        """One CSV row of :data:`CSV_KEYS` per layer (or module at ``depth``), raw values."""
        return records_table(self.rows(depth), CSV_KEYS, "csv") + "\n"

    def to_csv(self, path: str | os.PathLike[str], depth: int | None = None) -> None:
        """Write :meth:`to_csv_text` to ``path`` (atomically)."""
        atomic_write_text(path, self.to_csv_text(depth))
