"""Fit a network to data with other classes or channels: a new classifier head, a new first
conv. Used by ``leanconv train`` when a model (torchvision, timm, a checkpoint, a converted
file) was built for other data than the run's.

* head: the last ``nn.Linear`` (or 1x1 ``nn.Conv2d``, as SqueezeNet's) with the model's
  number of classes as outputs, replaced by a freshly initialised one of the same type with
  ``num_classes`` outputs;
* stem: the first ``nn.Conv2d`` reading the model's input channels, replaced by one reading
  ``in_chans``: 3 -> 1 sums the filters over the colour channels (a gray image repeated three
  times gives the old conv's output exactly), 1 -> 3 divides the filter by 3 and repeats it
  (so does a colour image with equal channels); other counts start fresh.

:func:`adapt_model` returns what it did as a plain record (module names and sizes) that
:func:`apply_adaptation` replays on a freshly built network, so a saved model rebuilds
(:mod:`leanconv.loading`) before its weights are loaded.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from leanconv._validate import check_int


def _head(model: nn.Module, num_classes: int) -> str:
    name = None
    for module_name, module in model.named_modules():
        if (isinstance(module, nn.Linear) and module.out_features == num_classes) or (
                type(module) is nn.Conv2d and module.kernel_size == (1, 1)
                and module.out_channels == num_classes):
            name = module_name
    if name is None:
        raise ValueError(f"adapt_model: found no classifier head (an nn.Linear or 1x1 conv "
                         f"with {num_classes} outputs) in {type(model).__name__}; build the "
                         f"model with num_classes= instead")
    return name


def _stem(model: nn.Module, in_chans: int) -> str:
    for name, module in model.named_modules():
        if getattr(module, "in_channels", None) == in_chans:
            if type(module) is not nn.Conv2d or module.groups != 1:
                raise ValueError(f"adapt_model: the first conv, {name!r}, is a "
                                 f"{type(module).__name__}; only an ungrouped nn.Conv2d stem "
                                 f"can take other input channels")
            return name
    raise ValueError(f"adapt_model: found no conv reading {in_chans} input channels in "
                     f"{type(model).__name__}")


def _new_head(old: nn.Module, num_classes: int) -> nn.Module:
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
    return new.to(old.weight.device, old.weight.dtype)


@torch.no_grad()
def _new_stem(old: nn.Conv2d, in_chans: int) -> tuple[nn.Conv2d, str]:
    new = nn.Conv2d(in_chans, old.out_channels, old.kernel_size, old.stride, old.padding,
                    old.dilation, bias=old.bias is not None, padding_mode=old.padding_mode)
    new = new.to(old.weight.device, old.weight.dtype)
    if (old.in_channels, in_chans) == (3, 1):
        new.weight.copy_(old.weight.sum(1, keepdim=True))
        how = "filters summed over the colour channels"
    elif (old.in_channels, in_chans) == (1, 3):
        new.weight.copy_(old.weight.repeat(1, 3, 1, 1) / 3)
        how = "filter repeated over the colour channels, divided by 3"
    else:
        how = "fresh weights"
    if old.bias is not None:
        new.bias.copy_(old.bias)
    return new, how


def adapt_model(model: nn.Module, *, classes: tuple[int, int], chans: tuple[int, int]
                ) -> tuple[dict[str, Any], list[str]]:
    """Change ``model`` in place from ``classes[0]`` to ``classes[1]`` outputs and from
    ``chans[0]`` to ``chans[1]`` input channels (see the module docstring). Returns the
    record for :func:`apply_adaptation` (empty when nothing changed) and one log line per
    change."""
    for name, pair in (("classes", classes), ("chans", chans)):
        for value in pair:
            check_int("adapt_model", name, value)
    record: dict[str, Any] = {}
    messages = []
    if classes[0] != classes[1]:
        name = _head(model, classes[0])
        model.set_submodule(name, _new_head(model.get_submodule(name), classes[1]))
        record.update(head=name, num_classes=classes[1])
        messages.append(f"head {name!r}: {classes[0]} -> {classes[1]} classes (fresh weights)")
    if chans[0] != chans[1]:
        name = _stem(model, chans[0])
        new, how = _new_stem(model.get_submodule(name), chans[1])
        model.set_submodule(name, new)
        record.update(stem=name, in_chans=chans[1])
        messages.append(f"first conv {name!r}: {chans[0]} -> {chans[1]} input channels "
                        f"({how})")
    return record, messages


def apply_adaptation(model: nn.Module, record: dict[str, Any]) -> None:
    """Replay an :func:`adapt_model` record on a freshly built ``model`` (in place; the new
    layers' weights are for the caller to load). ValueError when the record does not fit."""
    if not isinstance(record, dict) or not set(record) <= {"head", "num_classes", "stem",
                                                            "in_chans"}:
        raise ValueError(f"apply_adaptation: record={record!r} is invalid; expected what "
                         f"adapt_model returned")
    for key, count, make in (("head", "num_classes", _new_head),
                             ("stem", "in_chans", lambda old, n: _new_stem(old, n)[0])):
        if key in record:
            try:
                old = model.get_submodule(record[key])
            except AttributeError:
                raise ValueError(f"apply_adaptation: the model has no layer "
                                 f"{record[key]!r}") from None
            model.set_submodule(record[key], make(old, record[count]))
