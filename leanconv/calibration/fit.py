"""``fit_converted``: fit the replaced layers of a converted model on calibration images.

1. Forwards of ``original`` (eval, no grad) on all images, :data:`TARGET_CHUNK` at a time;
   a forward hook on each named layer samples up to ``samples`` of its ``B H_out W_out``
   output positions (uniformly, without replacement, seeded by the layer's name:
   :mod:`.sampling`) and keeps the target ``Y`` (S, N) there, the full output maps only for
   layers whose rule needs them.
2. One forward of ``converted`` (eval, no grad) on all images; a forward pre-hook on each
   named layer, called in forward order, receives the layer's actual input ``X`` (computed
   by the already-fitted layers before it), fits the layer by its rule
   (:mod:`.rules`: masked dense least squares, alternating least squares, or gradient
   reconstruction), and the forward continues with the fitted weights; a forward hook then
   measures ``||layer(X) - Y||^2 / ||Y||^2`` on the samples. A layer called more than once
   is fitted on its first call. A linear layer (a classifier head) is a 1x1 conv on its
   ``(B, C)`` input seen as ``(B, C, 1, 1)`` maps. Each forward stops as soon as every layer
   is done.
3. With ``batchnorm=True``, in that same forward, every BatchNorm outside the fitted layers
   that runs after the first fitted layer starts takes as running statistics the mean and
   (unbiased) variance of its input over all images, before it normalises: the network's
   statistics after the change, estimated without another forward, and every later layer is
   fitted on the re-normalised features it will see. The forward then runs to the end.

Fitting each layer on the inputs the fitted network actually produces (not on the original
network's inputs) lets a layer correct the errors of the layers before it; this sequential
layer-wise scheme is that of e.g. Y. He, X. Zhang, J. Sun, "Channel Pruning for
Accelerating Very Deep Neural Networks", ICCV 2017, arXiv:1707.06168. Re-estimating the
BatchNorms inside the fit rather than after it (:func:`.batchnorm.recalibrate_batchnorm`, a
third forward) measured better here: resnet20 on Fashion-MNIST, HetConv p=4 fitted on 1,024
images, 87.88% test accuracy against 87.54% re-estimated afterwards (87.72% not
re-estimated).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from leanconv._validate import check_int, check_module
from leanconv.calibration.batchnorm import batchnorms, check_images
from leanconv.calibration.rules import FitProblem, FitRule, fit_rule_for
from leanconv.calibration.sampling import gather_outputs, layer_seed, sample_positions

OWNER = "fit_converted"


@dataclass(frozen=True)
class FitResult:
    """How a layer was fitted and its relative error ``||layer(X) - Y||^2 / ||Y||^2`` on the
    sampled positions after the fit."""

    method: str
    rel_error: float


@dataclass
class _Target:
    positions: torch.Tensor
    shape: tuple[int, int, int, int]
    values: torch.Tensor
    maps: torch.Tensor | None


TARGET_CHUNK = 32
"""Images per forward of the original model (step 1): smaller activations are faster to
allocate and touch (resnet50, 256 images at 224x224, 2 threads: 16 s in chunks of 32
against 20 s in one batch)."""


class _Done(Exception):
    """Raised by a hook to end a forward once every layer is done."""


def _as_maps(value: object) -> object:
    """A ``(B, C)`` tensor (a linear layer's input or output) as ``(B, C, 1, 1)`` maps: a
    linear layer is a 1x1 conv on them; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 2:
        return value[:, :, None, None]
    return value


def _check_names(names: object, original: nn.Module, converted: nn.Module) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ValueError(f"{OWNER}: names={names!r} is invalid; expected a list of module "
                         f"names such as ['layer1.0.conv1']")
    names = list(dict.fromkeys(names))
    known = {"original": dict(original.named_modules()),
             "converted": dict(converted.named_modules())}
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{OWNER}: names holds {name!r}; expected non-empty module names "
                             f"(strings)")
        for which, modules in known.items():
            if name not in modules:
                close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
                hint = f"close matches: {', '.join(close)}" if close else \
                    "see named_modules()"
                raise ValueError(f"{OWNER}: names holds {name!r}, which is not a module of "
                                 f"{which}; {hint}")
    for name in names:
        inner = next((other for other in names if other.startswith(name + ".")), None)
        if inner is not None:
            raise ValueError(f"{OWNER}: names holds both {name!r} and {inner!r}, which is "
                             f"inside it; name disjoint layers")
    return names


def _check_arguments(original: object, converted: object, names: object, images: object,
                     samples: object, ridge: object, batch_size: object, batchnorm: object
                     ) -> list[str]:
    check_module(OWNER, "original", original)
    check_module(OWNER, "converted", converted)
    if original is converted:
        raise ValueError(f"{OWNER}: original and converted are the same model; pass the "
                         f"model before conversion and a converted copy")
    check_images(OWNER, "images", images)
    check_int(OWNER, "samples", samples)
    check_int(OWNER, "batch_size", batch_size)
    if (isinstance(ridge, bool) or not isinstance(ridge, int | float)
            or not math.isfinite(ridge) or ridge < 0):
        raise ValueError(f"{OWNER}: ridge={ridge!r} is invalid; expected a finite number >= 0 "
                         f"(the ridge relative to the mean of the Gram's diagonal, e.g. 1e-3)")
    if not isinstance(batchnorm, bool):
        raise ValueError(f"{OWNER}: batchnorm={batchnorm!r} is invalid; expected True or False")
    names = _check_names(names, original, converted)
    ours = {id(p) for p in original.parameters()}
    for name in names:
        if any(id(p) in ours for p in converted.get_submodule(name).parameters()):
            raise ValueError(f"{OWNER}: layer {name!r} of converted shares parameters with "
                             f"original; fit a copy (convert() returns one unless inplace)")
    return names


class _Modes:
    """Put a model in eval mode for a block and restore every module's mode after it."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> nn.Module:
        return self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.train(training)


def _run(model: nn.Module, images: torch.Tensor, handles: list) -> None:
    """One forward of ``model`` on ``images`` (ended early by a hook's :class:`_Done`), then
    the hooks ``handles`` removed."""
    try:
        with _Modes(model), torch.no_grad():
            try:
                model(images)
            except _Done:
                pass
    finally:
        for handle in handles:
            handle.remove()


def _record_targets(original: nn.Module, names: list[str], images: torch.Tensor,
                    samples: int, full: dict[str, bool]) -> dict[str, _Target]:
    """Step 1 of the module docstring, in forwards of :data:`TARGET_CHUNK` images."""
    targets: dict[str, _Target] = {}
    pieces: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    count = images.shape[0]

    def hook(name: str, first: int, seen: set[str]):  # noqa: ANN202
        def record(module: nn.Module, args: tuple, output: object) -> None:
            if name in seen:
                return
            seen.add(name)
            output = _as_maps(output)
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                what = (f"a tensor of shape {tuple(output.shape)}"
                        if isinstance(output, torch.Tensor) else type(output).__name__)
                raise ValueError(f"{OWNER}: layer {name!r} of original returns {what}; only "
                                 f"layers with (B, C, H, W) or (B, C) tensor outputs can be "
                                 f"fitted")
            b, c, h, w = output.shape
            if name not in targets:
                shape = (count, c, h, w)
                positions = sample_positions((count, h, w), samples, layer_seed(name))
                maps = output.new_empty(shape) if full[name] else None
                targets[name] = _Target(positions, shape, output.new_empty(0), maps)
            target = targets[name]
            # positions are sorted: this chunk's are one run of them
            lo, hi = (int(torch.searchsorted(target.positions, k * h * w))
                      for k in (first, first + b))
            pieces[name].append(gather_outputs(output.detach(),
                                               target.positions[lo:hi] - first * h * w))
            if target.maps is not None:
                target.maps[first:first + b] = output.detach()
            if len(seen) == len(names):
                raise _Done
        return record

    for first in range(0, count, TARGET_CHUNK):
        seen: set[str] = set()
        _run(original, images[first:first + TARGET_CHUNK],
             [original.get_submodule(n).register_forward_hook(hook(n, first, seen))
              for n in names])
        missing = [n for n in names if n not in seen]
        if missing:
            raise ValueError(f"{OWNER}: layers {missing} of original were not called by its "
                             f"forward on images; name layers the forward uses")
    for name, target in targets.items():
        target.values = torch.cat(pieces[name])
    return targets


def _relative_error(output: torch.Tensor, target: _Target) -> float:
    fitted = gather_outputs(output.detach(), target.positions)
    wanted = target.values
    error = float((fitted - wanted).square().sum(dtype=torch.float64))
    norm = float(wanted.square().sum(dtype=torch.float64))
    if norm > 0:
        return error / norm
    return 0.0 if error == 0 else math.inf


def _fit_layers(converted: nn.Module, names: list[str], rules: dict[str, FitRule],
                targets: dict[str, _Target], images: torch.Tensor, ridge: float,
                batch_size: int, batchnorm: bool) -> dict[str, FitResult]:
    """Step 2 of the module docstring (and step 3 with ``batchnorm``)."""
    methods: dict[str, str] = {}
    started: set[str] = set()
    results: dict[str, FitResult] = {}
    norms = _downstream_norms(converted, names, started) if batchnorm else []

    def pre_hook(name: str):  # noqa: ANN202
        def fit(module: nn.Module, args: tuple) -> None:
            if name in methods or name in started:
                return  # fitted, or a call from inside its own fit
            started.add(name)
            x = _as_maps(args[0]) if args else None
            if not isinstance(x, torch.Tensor) or x.dim() != 4:
                raise ValueError(f"{OWNER}: layer {name!r} of converted is called without a "
                                 f"(B, C, H, W) or (B, C) tensor as its first argument")
            target = targets[name]
            problem = FitProblem(name, x, target.positions, target.shape, target.values,
                                 target.maps, ridge, batch_size, layer_seed(name))
            try:
                methods[name] = rules[name].fit(module, problem)
            except ValueError as error:
                raise ValueError(f"{OWNER}: fitting layer {name!r}: {error}") from None
        return fit

    def post_hook(name: str):  # noqa: ANN202
        def measure(module: nn.Module, args: tuple, output: object) -> None:
            if name in results or name not in methods:
                return
            target = targets[name]
            output = _as_maps(output)
            if not isinstance(output, torch.Tensor) or tuple(output.shape) != target.shape:
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else output
                raise ValueError(f"{OWNER}: layer {name!r} of converted returns {shape}, the "
                                 f"original layer {target.shape}; a replacement must keep "
                                 f"the output shape")
            results[name] = FitResult(methods[name], _relative_error(output, target))
            if len(results) == len(names) and not batchnorm:
                raise _Done
        return measure

    handles = [norm.register_forward_pre_hook(hook) for norm, hook in norms]
    for name in names:
        layer = converted.get_submodule(name)
        handles.append(layer.register_forward_pre_hook(pre_hook(name)))
        handles.append(layer.register_forward_hook(post_hook(name)))
    _run(converted, images, handles)
    missing = [n for n in names if n not in results]
    if missing:
        raise ValueError(f"{OWNER}: layers {missing} of converted were not called by its "
                         f"forward on images")
    return results


def _downstream_norms(converted: nn.Module, names: list[str], started: set[str]) -> list:
    """Step 3 of the module docstring: ``(batchnorm, pre-hook)`` for every BatchNorm of
    ``converted`` with running statistics outside the fitted layers (a fit rule owns the
    parameters inside its layer)."""
    inside = {id(m) for name in names for m in converted.get_submodule(name).modules()}
    done: set[int] = set()

    def estimate(norm: nn.Module, args: tuple) -> None:
        if not started or id(norm) in done or not args:
            return  # before the first fitted layer its input is unchanged; or seen already
        done.add(id(norm))
        # momentum 1: the running statistics become the batch's mean and unbiased variance
        # (aten's fused statistics kernel: 16x faster than torch.var_mean on channels_last)
        torch.batch_norm_update_stats(args[0], norm.running_mean, norm.running_var, 1.0)

    return [(norm, estimate) for norm in batchnorms(converted) if id(norm) not in inside]


def fit_converted(original: nn.Module, converted: nn.Module, names: Iterable[str],
                  images: torch.Tensor, *, samples: int = 60000, ridge: float = 1e-3,
                  batch_size: int = 256, batchnorm: bool = False) -> dict[str, FitResult]:
    """Fit the layers ``names`` of ``converted`` (in place) so that each reproduces the
    output of the layer of that name in ``original`` (unchanged) on ``images`` (N, C, H, W,
    normalised as the models expect); see the module docstring.

    ``samples``: output positions sampled per layer; ``ridge``: the least-squares ridge
    relative to the mean of the Gram's diagonal; ``batch_size``: images per forward where a
    rule runs a layer on all images (the gradient reconstruction); ``batchnorm``: also
    re-estimate the BatchNorm statistics after the first fitted layer in the same forward
    (step 3). Returns
    ``{name: FitResult}`` in the order the layers were fitted (forward order). Every
    argument is checked (ValueError naming it)."""
    names = _check_arguments(original, converted, names, images, samples, ridge, batch_size,
                             batchnorm)
    if not names:
        return {}
    rules = {name: fit_rule_for(converted.get_submodule(name)) for name in names}
    full = {name: rules[name].full_maps(converted.get_submodule(name)) for name in names}
    # channels_last: oneDNN's convs run faster on it (resnet50 forward on 256 images at
    # 224x224, 2 threads: 19 s against 29 s in NCHW); the results do not depend on it
    images = images.contiguous(memory_format=torch.channels_last)
    targets = _record_targets(original, names, images, samples, full)
    return _fit_layers(converted, names, rules, targets, images, float(ridge), batch_size,
                       batchnorm)
