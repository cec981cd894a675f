"""Cost side by side: every operator on one layer shape (:func:`compare_ops`), one model with
several conv specs (:func:`compare_convs`), every zoo model (:func:`zoo_costs`).

Each returns plain records (dicts), one per row, with the raw numbers; ``leanconv ops``,
``leanconv cost --compare`` and ``leanconv models`` format them as tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from leanconv._validate import check_choice, check_input_shape, check_int, check_threads
from leanconv.converter import convert, load_with_conv
from leanconv.cost.analytic import analytic_macs
from leanconv.cost.profile import profile
from leanconv.deploy.latency import folded_side_by_side
from leanconv.loading import load_model
from leanconv.models.registry import list_models
from leanconv.ops.create_conv import create_conv
from leanconv.runtimes import get_runtime
from leanconv.runtimes.timing import runtime_side_by_side

DEFAULT_OP_SPECS = ("standard", "group:g=4,shuffle=1", "dwsep", "hetconv:p=4", "hetconv:p=8",
                    "compconv:c0=128", "compconv:c0=64", "dilated:d=2", "deform")
COMPARED_KEYS = ("params", "macs_analytic", "macs_executed", "memory_access")
DEVICES = ("cpu", "cuda")


def _check_specs(owner: str, specs: object) -> tuple[str, ...]:
    if (isinstance(specs, str) or not isinstance(specs, Sequence) or not specs
            or not all(isinstance(s, str) for s in specs)):
        raise ValueError(f"{owner}: specs={specs!r} is invalid; expected a non-empty list of "
                         f"conv spec strings such as ['standard', 'hetconv:p=4']")
    repeated = sorted({s for s in specs if list(specs).count(s) > 1})
    if repeated:
        raise ValueError(f"{owner}: specs lists {repeated} more than once; give each once")
    return tuple(specs)


def compare_ops(in_channels: int = 256, out_channels: int = 256, kernel_size: int = 3,
                stride: int = 1, size: int = 28, specs: Sequence[str] = DEFAULT_OP_SPECS
                ) -> list[dict[str, Any]]:
    """Each operator of ``specs`` as one layer ``in_channels -> out_channels``, ``kernel_size``,
    ``stride``, on a ``1 x in_channels x size x size`` input: one record per spec with
    ``spec``, ``module`` (class name), ``params``, ``macs_executed`` (what the kernels run, as
    :func:`leanconv.profile` counts it), ``macs_analytic`` (the operator's own formula; None
    for one without a formula, whose count is the executed one) and ``vs_first`` (executed
    MACs relative to the first spec's)."""
    owner = "compare_ops"
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("size", size)):
        check_int(owner, name, value)
    records = []
    for spec in _check_specs(owner, specs):
        module = create_conv(spec, in_channels, out_channels, kernel_size, stride).eval()
        result = profile(module, (1, in_channels, size, size))
        executed = result.totals["macs_executed"]
        records.append({
            "spec": spec, "module": type(module).__name__, "params": result.totals["params"],
            "macs_executed": executed,
            "macs_analytic": analytic_macs(module, tuple(result.module("")["output_shape"])),
            "vs_first": executed / records[0]["macs_executed"] if records else 1.0})
    return records


def zoo_costs(pattern: str = "*", conv: str | None = None) -> list[dict[str, Any]]:
    """Every zoo model matching the glob ``pattern`` (built with ``conv``, a spec for its
    spatial convs, or as designed), profiled at its registry input size: records with
    ``model``, ``params``, ``macs_analytic``, ``macs_executed``, ``memory_access`` and
    ``input_shape`` (C, H, W)."""
    if not isinstance(pattern, str):
        raise ValueError(f"zoo_costs: pattern={pattern!r} is invalid; expected a glob string "
                         f"such as 'resnet*'")
    names = list_models(pattern)
    if not names:
        raise ValueError(f"zoo_costs: no model matches pattern={pattern!r}; models: "
                         f"{', '.join(list_models())}")
    records = []
    for name in names:
        model, info = load_model(name, conv=conv)
        shape = info.input_shape(1)
        totals = profile(model, shape).totals
        records.append({"model": name, **{key: totals[key] for key in COMPARED_KEYS},
                        "input_shape": shape[1:]})
    return records


def compare_convs(model: str | nn.Module, specs: Sequence[str],
                  input_shape: Sequence[int] | None = None, *, batch: int = 1,
                  latency: bool = False, device: str = "cpu", channels_last: bool = False,
                  threads: int | None = None, runtime: str = "torch",
                  precision: str | None = None, calibration: torch.Tensor | None = None
                  ) -> list[dict[str, Any]]:
    """One model with each conv spec of ``specs`` (``'standard'``: unchanged), profiled on
    ``input_shape`` and, with ``latency``, folded as deployed and timed side by side in
    interleaved rounds (:func:`leanconv.deploy.latency.folded_side_by_side`: drift on a shared
    machine hits every variant alike; ``threads`` default: torch's; the models themselves are
    not changed).

    ``runtime`` and ``precision`` (:data:`leanconv.runtimes.RUNTIMES`; default ``torch`` in
    its first precision, ``fp32``: the folded models above): with ``latency``, the models are
    built in that runtime and precision instead and timed side by side there
    (:func:`leanconv.runtimes.timing.runtime_side_by_side`, on the CPU); int8 is calibrated on
    ``calibration`` (images N x C x H x W, required for int8).

    ``model``: a reference for :func:`leanconv.load_model` (a zoo model is built with each
    spec, any other model converted, see :func:`leanconv.converter.load_with_conv`), or an
    ``nn.Module`` (converted). ``input_shape`` None: the reference's default input with
    ``batch`` (:meth:`leanconv.ModelInfo.input_shape`). One record per spec: ``conv``, the
    profile's totals (``params``, ``macs_analytic``, ``macs_executed``, ``flops``,
    ``memory_access``, ...), ``latency_ms`` and ``latency_iqr_ms`` when timed, and
    ``KEY_vs_first`` for :data:`COMPARED_KEYS` (and ``latency_ms``): the value relative to the
    first spec's (None where the first is 0).
    """
    owner = "compare_convs"
    specs = _check_specs(owner, specs)
    check_int(owner, "batch", batch)
    check_choice(owner, "device", device, DEVICES)
    check_threads(owner, threads)
    deployed = latency_runtime(owner, runtime, precision, latency=latency, device=device)
    if deployed is not None and deployed[1] == "int8" and (
            not isinstance(calibration, torch.Tensor) or calibration.dim() != 4):
        raise ValueError(f"{owner}: precision='int8' needs calibration images (N, C, H, W) "
                         f"to calibrate on; got calibration={type(calibration).__name__}")
    if input_shape is not None:
        input_shape = check_input_shape(owner, input_shape)
        if batch != 1:
            raise ValueError(f"{owner}: batch={batch} is given with input_shape="
                             f"{input_shape}; the batch is input_shape[0], drop batch")
    if isinstance(model, nn.Module):
        if input_shape is None:
            raise ValueError(f"{owner}: input_shape is required when model is an nn.Module")
        models = {spec: model if spec == "standard"
                  else convert(model, spec, require_change=True)[0] for spec in specs}
    elif isinstance(model, str):
        in_chans = {} if input_shape is None else {"in_chans": input_shape[1]}
        loaded = {spec: load_with_conv(model, spec, **in_chans) for spec in specs}
        models = {spec: built for spec, (built, _) in loaded.items()}
        input_shape = input_shape or loaded[specs[0]][1].input_shape(batch)
    else:
        raise ValueError(f"{owner}: model must be a model reference (str) or an nn.Module, got "
                         f"{type(model).__name__}")
    records = [{"conv": spec, **profile(m, input_shape).totals} for spec, m in models.items()]
    keys = list(COMPARED_KEYS)
    if latency and deployed is not None:
        timed = runtime_side_by_side(models, input_shape, runtime=deployed[0],
                                     precision=deployed[1], calibration=calibration,
                                     channels_last=channels_last, owner=owner,
                                     threads=threads or torch.get_num_threads())
    elif latency:
        timed = folded_side_by_side(models, input_shape, device=device,
                                    channels_last=channels_last,
                                    threads=threads or torch.get_num_threads())
    if latency:
        for record in records:
            record["latency_ms"], record["latency_iqr_ms"] = timed[record["conv"]]
        keys.append("latency_ms")
    first = records[0]
    for record in records:
        record.update({f"{key}_vs_first": record[key] / first[key] if first[key] else None
                       for key in keys})
    return records


def latency_runtime(owner: str, runtime: object, precision: object, *, latency: bool,
                    device: str = "cpu") -> tuple[str, str] | None:
    """``(runtime, precision)`` a latency is to be measured in (``precision`` None: the
    runtime's first), or None for PyTorch fp32: the folded models, timed on any device as
    before runtimes existed. A ``ValueError`` for a runtime that is unknown or not installed,
    a precision it does not run here, another runtime or precision without ``latency``, or
    with ``device`` ``cuda`` (the runtimes run on the CPU)."""
    entry = get_runtime(owner, runtime, precision)
    precision = precision or entry.precisions[0]
    if (runtime, precision) == ("torch", "fp32"):
        return None
    if not latency:
        raise ValueError(f"{owner}: runtime={runtime!r} precision={precision!r} say where the "
                         f"latency is measured; measure it (latency=True, --latency) or leave "
                         f"them out")
    if device != "cpu":
        raise ValueError(f"{owner}: device={device!r} is invalid with runtime={runtime!r} "
                         f"precision={precision!r}: the runtimes run on the CPU; give "
                         f"device='cpu'")
    return str(runtime), str(precision)
