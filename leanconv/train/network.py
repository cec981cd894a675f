"""The network a run trains and the teacher it distils from, fitted to the run's data.

:func:`build_network` takes any :func:`leanconv.load_model` reference:

* a zoo model is built for the data (``num_classes``, ``in_chans``, the small-input stem
  where the model has one and the images are at most 64 pixels, ``conv``);
* ``timm:NAME`` is built with ``num_classes`` and ``in_chans``; ``torchvision:NAME`` with
  ``num_classes``, its first conv adapted when the images are not RGB;
* a file (checkpoint or converted) gives its network freshly initialised, or, as ``init``,
  with its weights; its head and first conv are adapted (:mod:`leanconv.adapt`) when the
  data's classes or channels differ;
* ``conv`` on anything but a zoo model converts the spatial convs with the default policy
  (:func:`leanconv.convert`, weights inherited).

It also returns the record a checkpoint keeps (``built``), from which
:func:`leanconv.load_model` rebuilds the same network, and the log lines of what was
adapted.

:func:`load_teacher` loads the model a run distils from and says whether the run is
label-free: distillation alone (``distill_weight=1``) from a teacher whose classes the
data's labels are not (unlabeled ``images:DIR``, or another set of classes) needs no
labels, so the student keeps the teacher's outputs and is scored by its agreement with it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from leanconv.adapt import adapt_model
from leanconv.converter import convert
from leanconv.data.dataset import Dataset
from leanconv.data.load import labels_apply
from leanconv.loading import ModelInfo, load_model, rebuild, reference_kind
from leanconv.models.registry import model_entry
from leanconv.train.config import TrainConfig

SMALL_INPUT_MAX = 64  # images up to this size get a zoo model's small-input stem


def _initial(config: TrainConfig, data: Dataset, num_classes: int
             ) -> tuple[nn.Module, ModelInfo]:
    """The network before adaptation and conversion."""
    channels, height, width = data.image_shape
    ref = config.model
    kind = reference_kind(ref)
    if config.init is not None:
        return load_model(config.init)
    if kind == "file":
        _, info = load_model(ref)
        return rebuild(info), info
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if kind in ("zoo", "timm"):
        kwargs["in_chans"] = channels
    if kind == "zoo":
        if model_entry(ref).small_input and max(height, width) <= SMALL_INPUT_MAX:
            kwargs["small_input"] = True
        if config.conv not in (None, "standard"):
            kwargs["conv"] = config.conv
    return load_model(ref, **kwargs)


def build_network(config: TrainConfig, data: Dataset, num_classes: int | None = None
                  ) -> tuple[nn.Module, dict[str, Any], list[str]]:
    """``(model, built, log)``: the network ``config`` trains on ``data`` (see the module
    docstring), the record of it a checkpoint keeps, and what was adapted or converted.
    ``num_classes``: its outputs (default: the data's classes; a label-free run: the
    teacher's)."""
    num_classes = data.num_classes if num_classes is None else num_classes
    model, info = _initial(config, data, num_classes)
    channels, height, width = data.image_shape
    adapt, log = adapt_model(model, classes=(info.num_classes, num_classes),
                             chans=(info.in_chans, channels))
    plan, conv = dict(info.plan), info.conv
    if config.conv not in (None, "standard") and info.kind != "zoo":
        model, report = convert(model, config.conv, inplace=True, require_change=True)
        plan.update({row.name: config.conv for row in report.rows if row.replaced})
        conv = config.conv
        log.append(f"converted {report.replaced} of {len(report.rows)} convs to "
                   f"{config.conv!r} (weights inherited)")
    built = {"model": info.model, "kwargs": dict(info.kwargs), "adapt": {**info.adapt, **adapt},
             "plan": plan, "conv": conv, "input_size": [height, width]}
    return model, built, log


def load_teacher(config: TrainConfig, data: Dataset, device: str
                 ) -> tuple[nn.Module | None, ModelInfo | None, str | None]:
    """``(teacher, info, label_free)``: the teacher of ``config`` (None without one), in eval
    mode without gradients, on ``device`` in the run's memory format, its
    :class:`ModelInfo`, and why the run is label-free (None: it learns from the labels).
    ValueError when the teacher does not take the data's channels, or when its classes are
    not the data's and the run would still use labels (``distill_weight`` < 1)."""
    if config.teacher is None:
        return None, None, None
    teacher, info = load_model(config.teacher)
    channels = data.image_shape[0]
    if info.in_chans != channels:
        raise ValueError(f"train: teacher={config.teacher!r} takes {info.in_chans} input "
                         f"channels; the data has {channels} (give --in-chans {info.in_chans})")
    label_free = labels_apply(info, data)
    if label_free and config.distill < 1:
        raise ValueError(f"train: teacher={config.teacher!r} has {info.num_classes} classes "
                         f"and the labels do not fit it ({label_free}); distil without labels "
                         f"with --distill-weight 1, or give data labelled with its classes")
    teacher = teacher.to(device).eval().requires_grad_(False)
    if config.channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher, info, label_free
