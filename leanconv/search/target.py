"""What ``leanconv shrink`` aims at: a speed-up, a latency or a share of the MACs
(:class:`Target`), and the error raised when no plan reaches it (:class:`TargetUnreachable`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from leanconv.search.latency_table import LatencyTable

TARGETS = ("speedup", "latency_ms", "macs_ratio")


class TargetUnreachable(ValueError):
    """No plan of the candidates meets the target; the message says which target is."""


@dataclass(frozen=True)
class Target:
    """One of: ``speedup`` (> 1: the original's measured latency / this), ``latency_ms``
    (> 0), ``macs_ratio`` (between 0 and 1: at most this share of the original's MACs)."""

    kind: str
    value: float

    @classmethod
    def from_args(cls, speedup: object, latency_ms: object, macs_ratio: object) -> Target:
        given = {k: v for k, v in zip(TARGETS, (speedup, latency_ms, macs_ratio), strict=True)
                 if v is not None}
        if len(given) != 1:
            raise ValueError(f"shrink: give exactly one target of speedup=, latency_ms=, "
                             f"macs_ratio=; got {given or 'none'}")
        (kind, value), = given.items()
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(
                value):
            raise ValueError(f"shrink: {kind}={value!r} is invalid; expected a number")
        if kind == "speedup" and value <= 1:
            raise ValueError(f"shrink: speedup={value!r} asks for no speed-up; expected a "
                             f"number > 1 (1.5 = 1.5x faster than the original)")
        if kind == "latency_ms" and value <= 0:
            raise ValueError(f"shrink: latency_ms={value!r} is invalid; expected ms > 0")
        if kind == "macs_ratio" and not 0 < value < 1:
            raise ValueError(f"shrink: macs_ratio={value!r} is invalid; expected a share "
                             f"of the original's MACs between 0 and 1 (0.5 = half)")
        return cls(kind, float(value))

    def budget(self, table: LatencyTable) -> float:
        """The whole model's allowed predicted latency (ms) or MACs."""
        if self.kind == "speedup":
            return table.total_ms / self.value
        if self.kind == "latency_ms":
            return self.value
        return self.value * table.total_macs

    def describe(self) -> str:
        return {"speedup": f"{self.value:g}x speed-up", "latency_ms": f"{self.value:g} ms",
                "macs_ratio": f"{self.value:g} of the MACs"}[self.kind]
