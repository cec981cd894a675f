"""``leanconv bench models``: leanconv's networks against the libraries people use today.

Each pair is timed side by side in interleaved rounds (:func:`measure_side_by_side`) on the
same input, layout and thread count, in eval mode. leanconv's model runs in its folded form
(:func:`leanconv.fold`, per-layer choices measured on this input); the reference runs as its
library ships it. ``ratio`` = leanconv's time / the reference's (below 1: leanconv is faster).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from leanconv.cost.latency import measure_side_by_side
from leanconv.deploy.fold import fold
from leanconv.models.registry import create_model


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None)

    return build


def _timm(name: str) -> Callable[[], nn.Module | None]:
    def build() -> nn.Module | None:
        try:
            import timm
        except ImportError:
            return None
        return timm.create_model(name, pretrained=False)

    return build


@dataclass(frozen=True)
class ModelCase:
    """leanconv's ``model`` (with ``conv``) against ``reference`` at ``size`` x ``size``."""

    model: str
    conv: str | None
    reference: str
    build_reference: Callable[[], nn.Module | None]
    size: int


CASES: tuple[ModelCase, ...] = (
    ModelCase("mobilenet_v2_100", None, "torchvision mobilenet_v2",
              _torchvision("mobilenet_v2"), 224),
    ModelCase("shufflenet_v2_x1_0", None, "torchvision shufflenet_v2_x1_0",
              _torchvision("shufflenet_v2_x1_0"), 224),
    ModelCase("mixnet_s", None, "timm mixnet_s", _timm("mixnet_s"), 224),
    ModelCase("vgg16_cifar", "hetconv:p=4", "leanconv vgg16_cifar (standard, folded)",
              lambda: fold(create_model("vgg16_cifar"))[0], 32),
)


def bench_models(*, threads: int, batches: tuple[int, ...] = (1, 32),
                 layouts: tuple[str, ...] = ("nchw",), rounds: int = 5,
                 min_run_time: float = 0.2,
                 models: tuple[str, ...] | None = None) -> list[dict[str, object]]:
    """One row per (case, batch, layout): both times (median ms, IQR) and the ratio;
    ``models`` limits the cases to those leanconv models."""
    known = [case.model for case in CASES]
    unknown = sorted(set(models or ()) - set(known))
    if unknown:
        raise ValueError(f"bench_models: models={unknown} are not benchmarked; choose from "
                         f"{known}")
    rows = []
    for case in CASES:
        if models and case.model not in models:
            continue
        reference = case.build_reference()
        if reference is None:
            continue
        for batch, layout in itertools.product(batches, layouts):
            channels_last = layout == "channels_last"
            shape = (batch, 3, case.size, case.size)
            torch.manual_seed(0)
            ours, _ = fold(create_model(case.model, conv=case.conv), shape,
                           channels_last=channels_last, threads=threads)
            times = measure_side_by_side({"leanconv": ours, "reference": reference}, shape,
                                         channels_last=channels_last, threads=threads,
                                         rounds=rounds, min_run_time=min_run_time)
            (ms, iqr), (ref_ms, ref_iqr) = times["leanconv"], times["reference"]
            rows.append({"model": case.model, "conv": case.conv or "standard",
                         "reference": case.reference, "batch": batch,
                         "layout": layout,
                         "ms": round(ms, 3), "iqr_ms": round(iqr, 3),
                         "reference_ms": round(ref_ms, 3), "reference_iqr_ms": round(ref_iqr, 3),
                         "ratio": round(ms / ref_ms, 3)})
    return rows
