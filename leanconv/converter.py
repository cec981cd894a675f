"""``leanconv.converter``: ``leanconv.convert`` swaps the convolutions of any model for an
efficient operator. (The module is not named ``convert``: importing a submodule sets the
package attribute of its name, which would hide the ``leanconv.convert`` function.)

Default policy (:class:`ConversionPolicy`): every ``nn.Conv2d`` with a kernel larger than
1x1 and ``groups == 1`` is a candidate; the stem (the first ``nn.Conv2d`` in registration
order, which sees the image) and 1x1 and grouped/depthwise convs are kept (``pointwise``:
1x1 convs are candidates too, for an operator that takes them, e.g.
``group:g=2,shuffle=1``); ``include`` / ``exclude`` filter module names by glob;
``min_channels`` keeps narrow layers. With an input (``input_shape``, or the calibration
images'), a conv that never runs in the forward (GoogLeNet's auxiliary heads in eval mode)
is kept, with that reason. A conversion that replaces nothing says why, in one line
(:meth:`ConversionReport.nothing_replaced`, also warned). A candidate
the operator cannot take (channels not divisible by p, an asymmetric kernel, a padding mode
other than zeros) is kept and reported with the reason. ``to='standard'`` converts leanconv
operators that have an exact dense equivalent (HetConv, group conv, depthwise-separable
without norm) back to ``nn.Conv2d``. A plan (``{layer name or glob: spec or 'keep'}``) gives
each layer its own operator instead, bypassing the policy (:func:`check_plan`,
:func:`read_plan` for its JSON file).

Each replacement is :func:`leanconv.ops.create_conv.create_conv_like` (stride, dilation,
padding and bias carried over); weights are inherited data-free as :mod:`leanconv.inherit`
documents. With ``calibration=images`` (N, C, H, W, normalised as the model expects) they are
then fitted on those images (:mod:`leanconv.calibration`): each replaced layer, in forward
order, by a least-squares fit of its output to the original layer's output on the images
(its input computed by the already-fitted layers before it); every BatchNorm after the
first replaced layer takes the statistics of its input on the images in that same forward,
so later layers are fitted on the re-normalised features; last, the classifier (the model's
last ``nn.Linear``, kept) is refitted to the original logits on the converted features. A
row's ``weights`` then reads e.g. ``fitted (least-squares, err 0.031)`` (relative squared
error on the sampled positions) and the totals hold ``calibration`` (images, samples per
layer, the classifier's name and error, seconds).
With ``input_shape``, the report also holds each layer's MACs before and after and the
model's analytic and executed MACs and memory access (:func:`leanconv.profile` on that input;
a model that fails on it is an error); without it, parameters only.
:func:`save_converted` writes a converted model as a plan that :func:`leanconv.load_model`
rebuilds (:data:`leanconv.loading.CONVERTED_FORMAT`).
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import json
import re
import time
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from leanconv import inherit
from leanconv._validate import check_input_shape, check_int
from leanconv.calibration import fit_converted
from leanconv.calibration.batchnorm import check_images
from leanconv.cost.profile import profile
from leanconv.cost.report import Profile
from leanconv.io import atomic_torch_save
from leanconv.loading import CONVERTED_FORMAT, ModelInfo, load_model, reference_kind
from leanconv.ops.create_conv import create_conv_like, parse_conv_spec
from leanconv.tables import format_table

PLAN = "plan"  # the report's ``to`` when a plan was applied
KEEP = "keep"  # a plan's spec for a layer left as it is


@dataclass
class ConversionPolicy:
    """Which convs ``convert`` replaces (see the module docstring)."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    min_channels: int = 1
    keep_stem: bool = True
    pointwise: bool = False

    def __post_init__(self) -> None:
        for name in ("include", "exclude"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            if not all(isinstance(v, str) for v in value):
                raise ValueError(f"ConversionPolicy: {name}={value!r} is invalid; expected "
                                 f"module-name globs such as 'layer4.*'")
            setattr(self, name, tuple(value))
        check_int("ConversionPolicy", "min_channels", self.min_channels)

    def reason_to_keep(self, name: str, conv: nn.Module, is_stem: bool) -> str | None:
        """Why ``conv`` named ``name`` is not a candidate, or None."""
        if not any(fnmatch.fnmatch(name, g) for g in self.include):
            return f"not in include {list(self.include)}"
        if any(fnmatch.fnmatch(name, g) for g in self.exclude):
            return "excluded by glob"
        if is_stem and self.keep_stem:
            return "stem (first conv on the image)"
        if isinstance(conv, nn.Conv2d):
            if conv.kernel_size == (1, 1) and not (self.pointwise and conv.groups == 1):
                return "1x1 conv"
            if conv.groups != 1:
                return f"grouped/depthwise conv (groups={conv.groups})"
        if min(conv.in_channels, conv.out_channels) < self.min_channels:
            return f"fewer than min_channels={self.min_channels} channels"
        return None


@dataclass
class ConversionRow:
    """One candidate layer of a conversion."""

    name: str
    old: str
    new: str
    replaced: bool
    reason: str
    weights: str
    params_before: int
    params_after: int
    macs_before: int | None = None
    macs_after: int | None = None
    spec: str = "-"


@dataclass
class ConversionReport:
    """What ``convert`` did, layer by layer, and what it saved."""

    to: str
    rows: list[ConversionRow] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def replaced(self) -> int:
        """Number of layers replaced."""
        return sum(row.replaced for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to, "replaced": self.replaced, "totals": self.totals,
                "rows": [asdict(row) for row in self.rows]}

    def kept(self) -> Counter[str]:
        """The layers kept, counted by the kind of reason (its words before a parenthesis or
        a semicolon: ``'grouped/depthwise conv (groups=32)'`` counts as ``'grouped/depthwise
        conv'``)."""
        return Counter(re.split(r" \(|;", row.reason)[0] for row in self.rows
                       if not row.replaced)

    def nothing_replaced(self) -> str | None:
        """None when a layer was replaced; else, in one line, that nothing was, why (the
        reasons the layers were kept, counted) and what could apply."""
        if self.replaced:
            return None
        if self.to == "standard":
            return ("nothing replaced: the model has no leanconv operator with a dense "
                    "equivalent to turn back into nn.Conv2d")
        if not self.rows:
            return (f"nothing replaced: the model has no nn.Conv2d "
                    f"{'the plan names' if self.to == PLAN else 'at all'}")
        reasons = self.kept()
        counted = ", ".join(f"{n} {kind}" for kind, n in reasons.most_common(4))
        more = f", {len(reasons) - 4} other reasons" if len(reasons) > 4 else ""
        hint = ""
        if reasons.get("1x1 conv"):
            hint = ("; 1x1 convs can become grouped convs with a channel shuffle (leanconv "
                    "convert --pointwise --to group:g=2,shuffle=1, or convert(..., "
                    "pointwise=True) in Python), or leanconv shrink chooses per layer "
                    "(--pointwise-candidates)")
        return (f"nothing replaced with {self.to!r}: all {len(self.rows)} convs were kept "
                f"({counted}{more}){hint}")

    def table(self) -> str:
        """A text table, one row per candidate, then the totals."""
        def mega(v: int | None) -> str:
            return "-" if v is None else f"{v / 1e6:.2f}"

        t = self.totals
        profiled = t.get("macs_analytic_before") is not None
        header = ("layer", "old", "new", "status", "weights", "params",
                  *(["MMACs"] if profiled else []))
        body = [(r.name, r.old, r.new, "replaced" if r.replaced else f"kept: {r.reason}",
                 r.weights, f"{r.params_before:,} -> {r.params_after:,}",
                 *([f"{mega(r.macs_before)} -> {mega(r.macs_after)}"] if profiled else []))
                for r in self.rows]
        lines = [format_table(header, body)]
        if self.to == PLAN:
            counts = Counter(r.spec for r in self.rows if r.replaced)
            used = ", ".join(f"{spec} x{n}" for spec, n in counts.items()) or "nothing"
            what = f"by the plan ({used})"
        else:
            what = f"with {self.to!r}"
        lines.append(f"{self.replaced} of {len(self.rows)} layers replaced {what}; "
                     f"params {t['params_before']:,} -> {t['params_after']:,}")
        if self.nothing_replaced():
            lines.append(self.nothing_replaced())
        calibration = t.get("calibration")
        if calibration is not None:
            head = calibration["classifier"]
            refit = "" if head is None else (f", classifier {head['name']!r} refitted "
                                             f"(err {head['rel_error']:.3f})")
            lines.append(f"weights fitted on {calibration['images']} calibration images "
                         f"(least squares on up to {calibration['samples']:,} positions per "
                         f"layer, BatchNorm statistics re-estimated{refit}) in "
                         f"{calibration['seconds']:.1f} s")
        elif self.to == "standard" and self.replaced:
            lines.append("weights exact: the operators' dense equivalents")
        elif all(r.weights == "fresh" for r in self.rows if r.replaced) and self.replaced:
            lines.append("weights not inherited: fresh initialisation")
        elif self.replaced:
            lines.append("weights inherited data-free from the replaced convs (the "
                         "leanconv.inherit rules); pass calibration= images to fit them")
        if profiled:
            ratio = t["macs_analytic_after"] / t["macs_analytic_before"]
            lines.append(
                f"MACs analytic {mega(t['macs_analytic_before'])}M -> "
                f"{mega(t['macs_analytic_after'])}M ({ratio:.3f}x), executed "
                f"{mega(t['macs_executed_before'])}M -> {mega(t['macs_executed_after'])}M on "
                f"input {t['input_shape']}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def describe_conv(conv: nn.Module) -> str:
    """A layer in one short line: ``Conv2d(64, 128, k=3, s=2)``, or its type name."""
    if isinstance(conv, nn.Conv2d):
        k, s = conv.kernel_size, conv.stride
        extra = f", g={conv.groups}" if conv.groups != 1 else ""
        return f"Conv2d({conv.in_channels}, {conv.out_channels}, k={k[0]}, s={s[0]}{extra})"
    return type(conv).__name__


def _candidates(model: nn.Module, to: str) -> list[tuple[str, nn.Module]]:
    if to == "standard":
        return [(n, m) for n, m in model.named_modules() if hasattr(m, "to_dense")]
    return [(n, m) for n, m in model.named_modules() if type(m) is nn.Conv2d]


def check_layer_spec(owner: str, where: str, spec: object) -> str:
    """``spec`` as one layer's choice in a plan or a candidate list: a conv spec that parses
    or ``'keep'``; ValueError naming ``where`` otherwise (``'standard'`` is refused: it turns
    operators back into dense convs, ``'keep'`` leaves a layer as it is)."""
    if not isinstance(spec, str):
        raise ValueError(f"{owner}: {where}: {spec!r} is invalid; expected a conv spec string "
                         f"or 'keep'")
    if spec == "standard":
        raise ValueError(f"{owner}: {where}: 'standard' is for convert(model, 'standard') "
                         f"(operators back to dense convs); 'keep' leaves a layer as it is")
    if spec != KEEP:
        try:
            parse_conv_spec(spec)
        except ValueError as error:
            raise ValueError(f"{owner}: {where}: {error}") from None
    return spec


def check_plan(owner: str, plan: object, model: nn.Module) -> dict[str, str]:
    """``plan`` (``{layer name or glob: spec or 'keep'}``) checked against ``model``'s
    ``nn.Conv2d`` layers: every spec parses, every exact name is such a layer and every glob
    matches one (ValueError naming the entry, with close matches). Returns it as a dict."""
    if not isinstance(plan, Mapping) or not plan:
        raise ValueError(f"{owner}: plan={plan!r} is invalid; expected a non-empty dict "
                         f"{{layer name or glob: conv spec or 'keep'}}")
    layers = [name for name, _ in _candidates(model, "")]
    for key, spec in plan.items():
        if not isinstance(key, str):
            raise ValueError(f"{owner}: plan entry {key!r}: {spec!r} is invalid; expected a "
                             f"layer name or glob and a conv spec string")
        check_layer_spec(owner, f"plan entry {key!r}", spec)
        if not any(fnmatch.fnmatchcase(name, key) for name in layers):
            close = difflib.get_close_matches(key, layers, n=3)
            hint = f"; close matches: {close}" if close else f"; its layers: {layers[:8]}..."
            raise ValueError(f"{owner}: plan entry {key!r} names no nn.Conv2d of the "
                             f"model{hint}")
    return dict(plan)


def read_plan(path: str) -> dict[str, str]:
    """The plan in the JSON file ``path`` (``{layer name or glob: spec or 'keep'}``, as
    ``leanconv shrink`` writes it; a ``{"plan": {...}}`` wrapper is read too); ValueError
    naming the file when it is missing or not such an object. The entries are checked
    against a model by :func:`check_plan`."""
    try:
        with open(path, encoding="utf-8") as file:
            payload = json.load(file)
    except OSError as error:
        raise ValueError(f"plan file {path!r} cannot be read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"plan file {path!r} is not JSON: {error}") from None
    if isinstance(payload, dict) and isinstance(payload.get("plan"), dict):
        payload = payload["plan"]
    if not isinstance(payload, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in payload.items()):
        raise ValueError(f"plan file {path!r} must hold a JSON object {{layer name or glob: "
                         f"conv spec or 'keep'}}, e.g. {{\"layer1.0.conv1\": \"hetconv:p=4\"}}")
    return payload


def _plan_spec(plan: dict[str, str], name: str) -> str | None:
    """The spec ``plan`` gives layer ``name``: its exact entry, else the first glob that
    matches it, else None."""
    if name in plan:
        return plan[name]
    return next((spec for key, spec in plan.items() if fnmatch.fnmatchcase(name, key)), None)


def convert(
    model: nn.Module,
    to: str | Mapping[str, str],
    *,
    policy: ConversionPolicy | None = None,
    inherit_weights: bool = True,
    inplace: bool = False,
    input_shape: tuple[int, ...] | None = None,
    calibration: torch.Tensor | None = None,
    calib_samples: int = 60000,
    require_change: bool = False,
    **policy_kwargs: Any,
) -> tuple[nn.Module, ConversionReport]:
    """Replace ``model``'s convs by the operator ``to`` (a conv spec); see the module doc.

    ``to`` may also be a plan, ``{layer name or glob: spec or 'keep'}`` (:func:`check_plan`):
    each ``nn.Conv2d`` takes the spec of its exact entry or else of the first glob matching
    it, every other layer is kept; a plan is explicit, so the policy's rules (stem, 1x1,
    grouped) do not apply and policy arguments are refused.

    ``policy_kwargs`` (``include``, ``exclude``, ``min_channels``, ``keep_stem``,
    ``pointwise``) build the policy when ``policy`` is None. ``input_shape`` (N, C, H, W):
    profile the model before and after on it and fill the report's MAC columns and cost
    totals (None, the default: the report counts parameters only; profiling costs a forward
    on meta tensors of each model); with it (or ``calibration``), convs that never run in the
    forward are kept. A conversion with a spec that replaces nothing warns
    (:meth:`ConversionReport.nothing_replaced`), or with ``require_change`` raises ValueError
    with that line, before any calibration (a plan that keeps every layer is explicit).
    ``calibration``: images (N, C, H, W) to fit the inherited weights on
    (:func:`leanconv.calibration.fit_converted` with ``batchnorm=True``, the classifier
    included), ``calib_samples`` output positions sampled per layer; needs
    ``inherit_weights=True``. Returns the converted model (a deep copy unless ``inplace``)
    and the report.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"convert: model must be an nn.Module, got {type(model).__name__}")
    plan = None
    if not isinstance(to, str):
        plan, to = check_plan("convert", to, model), PLAN
        if policy is not None or policy_kwargs:
            raise ValueError("convert: a plan names its layers itself; give no policy= or "
                             "policy keywords with it")
    elif to != "standard":
        parse_conv_spec(to)  # fails early, listing the valid kinds
    if calibration is not None:
        _check_calibration(to, inherit_weights, calibration, calib_samples)
    if input_shape is not None:
        input_shape = check_input_shape("convert", input_shape)
    if policy is not None and policy_kwargs:
        raise ValueError(f"convert: give either policy= or policy keywords "
                         f"{sorted(policy_kwargs)}, not both")
    if policy is None:
        try:
            policy = ConversionPolicy(**policy_kwargs)
        except TypeError as error:
            raise ValueError(f"convert: {error}; policy keywords: include, exclude, "
                             f"min_channels, keep_stem, pointwise") from None
    before = None if input_shape is None else _profile_original(model, input_shape)
    if before is None and calibration is not None:  # which convs run, if it can be profiled
        before = _profile_or_none(model, (1, *calibration.shape[1:]))
    total_before = sum(p.numel() for p in model.parameters())  # before an in-place change
    # the fit needs the original layers' outputs: keep a copy when converting in place
    reference = copy.deepcopy(model) if inplace and calibration is not None else model
    target = model if inplace else copy.deepcopy(model)
    convs = [m for m in target.modules() if isinstance(m, nn.Conv2d)]
    stem = convs[0] if convs else None
    report = ConversionReport(to)
    for name, conv in _candidates(target, to):
        params_before = sum(p.numel() for p in conv.parameters())
        row = ConversionRow(name, describe_conv(conv), "-", False, "", "-", params_before,
                            params_before)
        spec = to if plan is None else _plan_spec(plan, name)
        if spec is None or spec == KEEP:
            if plan is not None:
                row.reason = "not in the plan" if spec is None else "plan: keep"
                report.rows.append(row)
            continue
        report.rows.append(row)
        reason = None if plan is not None else policy.reason_to_keep(
            name, conv, conv is stem and to != "standard")
        if reason is None and before is not None and not before.ran(name):
            reason = "never runs in the forward (in eval mode)"
        if reason is None:
            try:
                new = create_conv_like(spec, conv)
            except ValueError as error:
                reason = str(error).split("\n")[0]
        if reason is not None:
            row.reason = reason
            continue
        if to == "standard":
            row.weights = "exact"
        elif inherit_weights:
            row.weights = inherit.inherit_weights(new, conv)
        else:
            row.weights = "fresh"
        target.set_submodule(name, new)
        row.new, row.replaced, row.spec = describe_conv(new), True, spec
        row.params_after = sum(p.numel() for p in new.parameters())
    nothing = None if plan is not None else report.nothing_replaced()
    if nothing and require_change:
        raise ValueError(f"convert: {nothing}")
    calibrated = None
    if calibration is not None:
        calibrated = _calibrate(reference, target, report, calibration, calib_samples)
    after = None if input_shape is None else profile(target, input_shape)
    _fill_costs(report, before if input_shape else None, after, total_before, target,
                input_shape)
    report.totals["calibration"] = calibrated
    if nothing:
        warnings.warn(f"convert: {nothing}", stacklevel=2)
    return target, report


def _check_calibration(to: str, inherit_weights: bool, calibration: object,
                       samples: object) -> None:
    if not inherit_weights:
        raise ValueError("convert: calibration= fits the inherited weights, so it needs "
                         "inherit_weights=True (got inherit_weights=False)")
    if to == "standard":
        raise ValueError("convert: calibration= is for efficient operators; to='standard' "
                         "rebuilds exact dense equivalents, there is nothing to fit")
    check_images("convert", "calibration", calibration)
    check_int("convert", "calib_samples", samples)


def _classifier(model: nn.Module, replaced: list[str]) -> str | None:
    """The name of ``model``'s last ``nn.Linear`` (its classifier) unless it is inside a
    replaced layer; None when it has none."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears or any(linears[-1].startswith(name + ".") for name in replaced):
        return None
    return linears[-1]


def _calibrate(original: nn.Module, target: nn.Module, report: ConversionReport,
               images: torch.Tensor, samples: int) -> dict[str, Any]:
    """Fit the replaced layers and the classifier on ``images``, re-estimating the
    BatchNorms in the same forward; fills the rows' ``weights`` and returns the report's
    ``calibration`` total."""
    start = time.perf_counter()
    names = [row.name for row in report.rows if row.replaced]
    head = _classifier(target, names) if names else None
    fitted = names + ([head] if head else [])
    results = fit_converted(original, target, fitted, images, samples=samples,
                            batchnorm=True) if names else {}
    for row in report.rows:
        if row.name in results:
            fit = results[row.name]
            row.weights = f"fitted ({fit.method}, err {fit.rel_error:.3f})"
    return {"images": int(images.shape[0]), "samples": samples,
            "classifier": None if head is None else {
                "name": head, "rel_error": round(results[head].rel_error, 6)},
            "seconds": round(time.perf_counter() - start, 3)}


def _profile_or_none(model: nn.Module, input_shape: tuple[int, ...]) -> Profile | None:
    """The model profiled on ``input_shape``, or None when it cannot be (on meta tensors)."""
    try:
        return profile(model, input_shape)
    except ValueError:
        return None


def _profile_original(model: nn.Module, input_shape: tuple[int, ...]) -> Profile:
    try:
        return profile(model, input_shape)
    except ValueError as error:
        raise ValueError(f"convert: input_shape={input_shape} does not fit the model; give the "
                         f"input it takes (N, C, H, W), or None for no cost columns ({error})"
                         ) from None


def _fill_costs(report: ConversionReport, before: Profile | None, after: Profile | None,
                params_before: int, target: nn.Module, input_shape: tuple[int, ...] | None
                ) -> None:
    report.totals = {
        "params_before": params_before,
        "params_after": sum(p.numel() for p in target.parameters()),
        "input_shape": list(input_shape) if input_shape else None,
    }
    if before is None or after is None:
        report.totals["macs_analytic_before"] = None
        return
    for row in report.rows:
        if before.ran(row.name):  # a layer that never runs costs nothing
            row.macs_before = before.module(row.name)["macs_analytic"]
            row.macs_after = after.module(row.name)["macs_analytic"]
    for key in ("macs_analytic", "macs_executed", "memory_access"):
        report.totals[f"{key}_before"] = before.totals[key]
        report.totals[f"{key}_after"] = after.totals[key]


def _plan(info: ModelInfo, report: ConversionReport) -> dict[str, str]:
    """``info``'s plan followed by the layers ``report`` replaced, in the order they were
    replaced (a layer replaced again moves to the end, with its new spec)."""
    replaced = {row.name: row.spec for row in report.rows if row.replaced}
    return {**{k: v for k, v in info.plan.items() if k not in replaced}, **replaced}


def _check_plain(owner: str, name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is made of what ``torch.load(weights_only=True)``
    reads back: None, bools, numbers, strings, and lists, tuples and str-keyed dicts of them."""
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(owner, name, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{owner}: {name} has the key {key!r}; keys must be strings")
            _check_plain(owner, name, item)
    elif value is not None and not isinstance(value, bool | int | float | str):
        raise ValueError(f"{owner}: {name} holds {value!r}; only plain values (numbers, "
                         f"strings, lists, dicts) can be saved, so build the model with spec "
                         f"strings instead of objects")


def save_converted(path: str, model: nn.Module, info: ModelInfo,
                   report: ConversionReport) -> None:
    """Save ``model``, the result of ``convert(base, ...)`` with ``report``, where ``base`` and
    ``info`` came from :func:`leanconv.load_model`, as a plain dict that ``load_model(path)``
    rebuilds (``torch.load(weights_only=True)`` reads it). Format
    :data:`~leanconv.loading.CONVERTED_FORMAT`: ``base`` and ``base_kwargs`` (the network
    before any conversion), ``plan`` (``{layer: spec}`` of the replaced layers), ``to``,
    ``source`` (the reference converted), ``input_size``, ``train_config`` (that of a
    converted training checkpoint, else None), ``adapt`` (its head and stem fitted to its
    data) and ``data`` (its data's record: the normalisation), and ``state_dict``."""
    if not isinstance(info, ModelInfo):
        raise ValueError(f"save_converted: info must be the ModelInfo load_model returned with "
                         f"the model that was converted, got {type(info).__name__}")
    if not isinstance(report, ConversionReport):
        raise ValueError(f"save_converted: report must be the ConversionReport convert "
                         f"returned, got {type(report).__name__}")
    _check_plain("save_converted", f"the build arguments of {info.model!r}", info.kwargs)
    payload = {"format": CONVERTED_FORMAT, "source": info.source, "base": info.model,
               "base_kwargs": dict(info.kwargs), "plan": _plan(info, report), "to": report.to,
               "input_size": list(info.input_size), "train_config": info.train_config,
               "adapt": dict(info.adapt), "data": info.data, "state_dict": model.state_dict()}
    atomic_torch_save(payload, path)


def load_with_conv(ref: str, conv: str | None, **kwargs: Any) -> tuple[nn.Module, ModelInfo]:
    """:func:`leanconv.load_model` with the spatial convs as the spec ``conv``: a zoo model is
    built with it (``create_model(conv=)``, the zoo's own rule); any other model
    (torchvision, timm, a checkpoint, a converted file) is converted with the default policy,
    weights inherited (ValueError, saying why, when it replaces nothing). ``conv`` None or
    ``'standard'`` gives the model as it is saved or built. ``kwargs`` go to ``load_model``."""
    if conv in (None, "standard"):
        return load_model(ref, **kwargs)
    parse_conv_spec(conv)  # a bad spec fails before anything is built
    if reference_kind(ref) == "zoo":
        return load_model(ref, conv=conv, **kwargs)
    model, info = load_model(ref, **kwargs)
    model, report = convert(model, conv, inplace=True, require_change=True)
    return model, replace(info, conv=conv, plan=_plan(info, report))
