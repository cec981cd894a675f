"""The latency table: every layer x every candidate, measured on this machine as deployed.

Each entry is one candidate with the layer's geometry, followed by a BatchNorm and folded by
:func:`leanconv.deploy.fold` on the layer's real input shape (BatchNorm into the conv's
weights, each operator in its fastest measured form), then timed alone on a random input of
that shape with ``torch.utils.benchmark`` (explicit threads, warm-up), a layer's candidates
taking turns in millisecond blocks (:func:`leanconv.cost.latency.interleaved_samples`, so
that drift on a shared machine hits them alike); the entry is the median. In another
runtime (:class:`leanconv.search.deployment.Deployment`: onnxruntime, OpenVINO) the entry is
that small graph built there, and a ``spec@int8`` entry is it quantized alone, with its
quantize and dequantize at both ends (what a layer of another precision pays inside the
model; the calibration in the model corrects what the runtime fuses away). The deployed
original is timed the same way, and

    predicted(plan) = total + sum_i (plan_i - keep_i + c_{plan_i} keep_i) + [plan mixes] m

(the measured total, plus what each replaced layer's entry changes, plus the in-context
corrections ``c`` and ``m`` that :func:`leanconv.search.correction.calibrate` fits to
measured plans; both 0 before calibration), the per-layer lookup of NetAdapt (T.-J. Yang et al.,
ECCV 2018, arXiv:1804.03230) and FBNet (B. Wu et al., CVPR 2019, arXiv:1812.03443).

Entries are cached in ``$XDG_CACHE_HOME/leanconv/latency/<key>.json`` (``~/.cache`` when
``XDG_CACHE_HOME`` is unset): one file per machine and setting (:func:`cache_key`: CPU
model, core count, torch version, threads, batch, memory format), holding entries by layer
signature (:func:`signature`: the conv's geometry, the input shape and the candidate spec),
so a second run, or another model with the same layer shapes, reuses them. A file that
records another key is ignored and rewritten (atomically); one that is corrupt too, after a
warning that names it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leanconv.converter import KEEP
from leanconv.cost.latency import interleaved_samples, median_iqr, torch_threads
from leanconv.cost.profile import profile
from leanconv.io import atomic_write_text, user_cache_dir
from leanconv.machine import cpu_model
from leanconv.ops.create_conv import create_conv_like
from leanconv.search.candidates import Layer
from leanconv.search.deployment import Deployment, split_choice

CACHE_VERSION = 2  # 2: each entry in the export form its runtime and precision run fastest


def cache_key(batch: int, threads: int, channels_last: bool) -> dict[str, Any]:
    """What a latency entry depends on besides the layer: the machine and the settings."""
    return {"version": CACHE_VERSION, "cpu": cpu_model(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": threads, "batch": batch,
            "memory_format": "channels_last" if channels_last else "contiguous"}


def cache_path(key: Mapping[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache file of ``key``: ``<cache_dir>/<hash of key>.json`` (default
    :func:`leanconv.io.user_cache_dir` ``("latency")``)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir or user_cache_dir("latency")) / f"{digest}.json"


def signature(conv: nn.Conv2d, input_shape: Sequence[int], spec: str) -> str:
    """A layer entry's cache key: the conv's geometry, its input shape and the spec."""
    geometry = (conv.in_channels, conv.out_channels, *conv.kernel_size, *conv.stride,
                *conv.padding, *conv.dilation, conv.bias is not None)
    return f"{spec}|conv{geometry}|in{tuple(input_shape)}"


def read_cache(path: Path, key: Mapping[str, Any]) -> dict[str, float]:
    """The entries cached at ``path`` for ``key``; empty when there is no file, it records
    another key (another machine or setting), or it is corrupt, which a warning naming the
    file reports (the entries are measured again and the file rewritten)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:  # unreadable, truncated, not UTF-8 or not JSON
        _report_corrupt(path, f"{type(error).__name__}: {error}")
        return {}
    if not isinstance(payload, dict) or not isinstance(payload.get("key"), dict):
        _report_corrupt(path, "it holds no key")
        return {}
    if payload["key"] != dict(key):
        return {}
    entries = payload.get("entries")
    if not isinstance(entries, dict):
        _report_corrupt(path, f"its entries are {type(entries).__name__}, not a dict")
        return {}
    return {k: float(v) for k, v in entries.items() if isinstance(v, int | float) and v > 0}


def _report_corrupt(path: Path, reason: str) -> None:
    """Warn that the latency cache file ``path`` cannot be used, and why (one line)."""
    warnings.warn(f"latency cache {str(path)!r} is corrupt ({reason.splitlines()[0][:200]}); "
                  f"measuring its entries again and rewriting it", stacklevel=3)


@dataclass
class LatencyTable:
    """Per layer, each candidate's latency (ms) and MACs; the folded original's measured
    total (ms) and MACs; ``measured``: the signatures timed now (layers of one signature
    share the entry), ``reused``: the entries read from the cache file ``cache``."""

    key: dict[str, Any]
    ms: dict[str, dict[str, float]]
    macs: dict[str, dict[str, int]]
    total_ms: float
    total_macs: int
    measured: int = 0
    reused: int = 0
    cache: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    correction: dict[str, float] = field(default_factory=dict)
    mixed_ms: float = 0.0
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rest_ms(self) -> float:
        """The measured total less the kept layers' entries: what no plan changes."""
        return self.total_ms - sum(row[KEEP] for row in self.ms.values())

    def cost(self, name: str, spec: str) -> float:
        """Layer ``name``'s predicted latency (ms) as ``spec`` inside the model: its entry,
        plus ``spec``'s in-context correction times the layer's kept entry
        (:mod:`leanconv.search.correction`; none before calibration), at least 0."""
        row = self.ms[name]
        if spec == KEEP:
            return row[KEEP]
        return max(0.0, row[spec] + self.correction.get(spec, 0.0) * row[KEEP])

    def mixes(self, plan: Mapping[str, str]) -> bool:
        """Whether ``plan`` gives the layers two or more specs (``keep`` included): such a
        plan pays ``mixed_ms`` (:mod:`leanconv.search.correction`)."""
        return len({plan.get(name, KEEP) for name in self.ms}) > 1

    def predict(self, plan: Mapping[str, str]) -> float:
        """Predicted latency (ms) of ``plan`` (``{layer: spec}``; absent layers kept)."""
        return (self.total_ms + sum(self.cost(name, plan.get(name, KEEP)) - row[KEEP]
                                    for name, row in self.ms.items())
                + (self.mixed_ms if self.mixes(plan) else 0.0))

    def predict_macs(self, plan: Mapping[str, str]) -> int:
        """Analytic MACs of ``plan`` (absent layers kept)."""
        return self.total_macs + sum(row[plan.get(name, KEEP)] - row[KEEP]
                                     for name, row in self.macs.items())

    @property
    def entries(self) -> int:
        return sum(len(row) for row in self.ms.values())

    def describe(self) -> str:
        where = f" ({self.cache})" if self.cache else ""
        calibrated = (f", calibrated in context on {len(self.calibration)} measured plans"
                      if self.calibration else "")
        return (f"latency table: {self.entries} entries, {self.measured} measured (layers of "
                f"one signature share one), {self.reused} reused from the cache{where}"
                f"{calibrated}, {self.seconds:.1f} s")


ENTRY_LAYER = "layer"  # the candidate's name in its entry module


def _entry_module(choice: str, conv: nn.Conv2d) -> nn.Module:
    """The candidate as deployed: ``choice``'s spec with ``conv``'s geometry (``keep``: a
    copy of ``conv``) named :data:`ENTRY_LAYER`, followed by a BatchNorm, both in eval mode
    (the fold merges the norm)."""
    spec = split_choice(choice)[0]
    layer = copy.deepcopy(conv) if spec == KEEP else create_conv_like(spec, conv)
    parameter = next(conv.parameters())
    norm = nn.BatchNorm2d(conv.out_channels).to(device=parameter.device, dtype=parameter.dtype)
    return nn.Sequential(OrderedDict([(ENTRY_LAYER, layer), ("norm", norm)])).eval()


def _macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    return int(profile(module, input_shape).totals["macs_analytic"])


def measure_table(model: nn.Module, layers: Sequence[Layer], input_shape: tuple[int, ...], *,
                  threads: int, channels_last: bool = False, rounds: int = 5,
                  min_run_time: float = 0.02, use_cache: bool = True,
                  cache_dir: str | os.PathLike[str] | None = None,
                  deployment: Deployment | None = None) -> LatencyTable:
    """Measure (or reuse from the cache) every entry of ``layers`` and the deployed original
    ``model`` at ``input_shape`` (batch first), as the module docstring describes, in
    ``deployment`` (default: PyTorch fp32 at ``threads`` and the memory format)."""
    start = time.perf_counter()
    deployment = deployment or Deployment(threads=threads, channels_last=channels_last)
    key = {**cache_key(input_shape[0], threads, channels_last), **deployment.cache_key()}
    path = cache_path(key, cache_dir)
    cached = read_cache(path, key) if use_cache else {}
    ms: dict[str, dict[str, float]] = {layer.name: {} for layer in layers}
    macs: dict[str, dict[str, int]] = {layer.name: {} for layer in layers}
    # per layer, the signatures it times: a layer's candidates take turns when timed
    groups: dict[str, dict[str, tuple[Callable[[], object], list[torch.Tensor]]]] = {}
    pending: dict[str, list[tuple[str, str]]] = {}  # signature -> the (layer, spec) it times
    reused = 0
    with torch_threads(threads):
        for layer in layers:
            for spec in layer.specs:
                module = _entry_module(spec, layer.conv)
                macs[layer.name][spec] = _macs(module, layer.input_shape)
                sig = signature(layer.conv, layer.input_shape, spec)
                if sig in cached:
                    ms[layer.name][spec] = cached[sig]
                    reused += 1
                elif sig in pending:  # a layer of the same signature: measured once
                    pending[sig].append((layer.name, spec))
                else:
                    pending[sig] = [(layer.name, spec)]
                    lowered = [ENTRY_LAYER] if split_choice(spec)[1] is not None else []
                    groups.setdefault(layer.name, {})[sig] = deployment.call(
                        module, layer.input_shape, lowered)
        for calls in groups.values():
            for sig, values in interleaved_samples(calls, threads, rounds * min_run_time,
                                                   min_rounds=rounds).items():
                cached[sig] = median_iqr(values)[0]
        whole = deployment.artifact(model, tuple(input_shape)).runner(
            torch.randn(tuple(input_shape)))
        total = interleaved_samples({"model": (whole, [])}, threads,
                                    max(rounds * min_run_time, 0.5), min_rounds=rounds)
    for sig, entries in pending.items():
        for name, spec in entries:
            ms[name][spec] = cached[sig]
    table = LatencyTable(key, ms, macs, median_iqr(total["model"])[0],
                         _macs(model, tuple(input_shape)), measured=len(pending), reused=reused)
    if use_cache:
        if pending:
            atomic_write_text(path, json.dumps({"key": key, "entries": cached}, indent=1,
                                               sort_keys=True))
        table.cache = str(path)
    table.seconds = time.perf_counter() - start
    return table
