"""``load_model(ref)``: the one way to get a model from a name or a file.

``ref`` is one of

* a zoo name (``leanconv.list_models()``): built by :func:`leanconv.create_model`, keyword
  arguments (``conv=``, ``small_input=``, ...) go to it;
* ``torchvision:NAME`` or ``timm:NAME``: a classification model of that library, randomly
  initialised (leanconv never downloads weights), keyword arguments go to its builder;
* a training checkpoint (``runs/NAME/best.pt``, :mod:`leanconv.checkpoint`) or a file
  written by ``leanconv convert --out`` (:data:`CONVERTED_FORMAT`): rebuilt the same way
  (:func:`rebuild`): the base network, then its head and first conv fitted to the data it
  was trained on (:func:`leanconv.adapt.apply_adaptation`), then each planned layer
  replaced by :func:`leanconv.ops.create_conv.create_conv_like`, then the saved weights.

Every call returns the model and a :class:`ModelInfo` saying what it is and what input it
takes. This module sits below :mod:`leanconv.converter` and :mod:`leanconv.train` (they import
it; it imports neither the converter nor the trainer), and imports timm only for ``timm:``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from leanconv._validate import check_int
from leanconv.adapt import apply_adaptation
from leanconv.checkpoint import FORMAT as CHECKPOINT_FORMAT
from leanconv.io import describe_payload, safe_torch_load
from leanconv.models.registry import create_model, list_models, model_entry
from leanconv.ops.create_conv import create_conv_like

CONVERTED_FORMAT = "leanconv-converted/2"
KINDS = ("zoo", "torchvision", "timm", "checkpoint", "converted")
FOREIGN_INPUT_SIZE = (224, 224)  # torchvision's and timm's classification models
_PREFIXES = ("torchvision", "timm")
_FILE_SUFFIXES = (".pt", ".pth")
_VALID = ("a zoo name (leanconv.list_models()), 'torchvision:NAME', 'timm:NAME', or the path "
          "of a training checkpoint or a `leanconv convert --out` file")


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`load_model` built.

    ``source``: the reference given; ``kind``: one of :data:`KINDS`; ``model``: the network it
    was built from (zoo name, ``torchvision:NAME`` or ``timm:NAME``; for a file, the one the
    file was made from) and ``kwargs`` the keyword arguments it was built with, so that
    ``load_model(info.model, **info.kwargs)`` builds the same network with fresh weights;
    ``plan``: ``{module name: conv spec}`` of the layers replaced after that (a converted
    model), in the order they were replaced. ``in_chans``, ``input_size`` (H, W) and
    ``num_classes``: the input the model expects by default (a zoo model's registry entry,
    224x224 for torchvision and timm, the training data's size for a trained model) and its
    outputs. ``conv``: the conv spec its spatial convs were built or converted with (None:
    as the architecture has them). ``base``: for a converted file, the reference that was
    converted. ``train_config``: the training configuration of a checkpoint (or of the
    checkpoint a converted file was made from), else None.
    """

    source: str
    kind: str
    model: str
    in_chans: int
    input_size: tuple[int, int]
    num_classes: int
    conv: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, str] = field(default_factory=dict)
    base: str | None = None
    train_config: dict[str, Any] | None = None
    adapt: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """``(batch, in_chans, H, W)``: the default input with a batch."""
        check_int("ModelInfo.input_shape", "batch", batch)
        return (batch, self.in_chans, *self.input_size)


def reference_kind(ref: str | os.PathLike[str]) -> str:
    """What ``ref`` names, without building it: ``'zoo'``, ``'torchvision'``, ``'timm'`` or
    ``'file'`` (a path: ends with .pt/.pth, has a folder in it, or exists); ValueError for a
    string that is none of these (an unknown zoo name lists the close matches)."""
    if isinstance(ref, os.PathLike):
        return "file"
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"load_model: ref={ref!r} is invalid; give {_VALID}")
    if (ref.endswith(_FILE_SUFFIXES) or "/" in ref or os.sep in ref
            or (ref not in list_models() and Path(ref).is_file())):
        return "file"
    prefix, colon, name = ref.partition(":")
    if colon:
        if prefix in _PREFIXES and name:
            return prefix
        raise ValueError(f"load_model: ref={ref!r} is invalid: the prefix must be "
                         f"'torchvision:' or 'timm:' followed by a model name; give {_VALID}")
    try:
        model_entry(ref)
    except ValueError as error:  # an unknown name: the message lists the close matches
        raise ValueError(f"load_model: {error} (or give 'torchvision:NAME', 'timm:NAME' or "
                         f"the path of a .pt file)") from None
    return "zoo"


def load_model(ref: str | os.PathLike[str], *, num_classes: int | None = None,
               in_chans: int | None = None, **kwargs: Any) -> tuple[nn.Module, ModelInfo]:
    """The model ``ref`` names (see the module docstring) and its :class:`ModelInfo`.

    ``num_classes`` and ``in_chans`` go to the builder of a network reference; for a file
    they are checks: a value that contradicts what the file holds is a ValueError. Other
    ``kwargs`` go to the builder (a file takes none: it rebuilds what it recorded).
    """
    for name, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if value is not None:
            check_int("load_model", name, value)
    kind = reference_kind(ref)
    source = os.fspath(ref)
    if kind != "file":
        given = {k: v for k, v in (("num_classes", num_classes), ("in_chans", in_chans))
                 if v is not None}
        return _build(source, kind, {**given, **kwargs})
    if kwargs:
        raise ValueError(f"load_model: {source!r} is a saved model, which rebuilds what it "
                         f"recorded; keyword arguments {sorted(kwargs)} apply only to a zoo, "
                         f"torchvision: or timm: reference")
    model, info = _load_file(source)
    for name, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        held = getattr(info, name)
        if value is not None and value != held:
            raise ValueError(f"load_model: {name}={value} contradicts {source!r}, which holds "
                             f"a model with {name}={held}; leave {name} out")
    return model, info


def rebuild(info: ModelInfo) -> nn.Module:
    """The network ``info`` describes, freshly initialised: ``info.model`` built with
    ``info.kwargs``, then ``info.adapt`` and ``info.plan`` applied (no weights loaded)."""
    if not isinstance(info, ModelInfo):
        raise ValueError(f"rebuild: info must be the ModelInfo load_model returned, got "
                         f"{type(info).__name__}")
    model, _ = _build(info.model, reference_kind(info.model), dict(info.kwargs))
    return _apply(info.source, model, info.model, info.adapt, info.plan)


def _apply(path: str, model: nn.Module, name: str, adapt: dict[str, Any],
           plan: dict[str, str]) -> nn.Module:
    """``model`` with the ``adapt`` record, then the ``plan``, applied (as :func:`rebuild`)."""
    try:
        apply_adaptation(model, adapt)
    except ValueError as error:
        raise ValueError(f"load_model: {path!r} is corrupt: {error}") from None
    for layer_name, spec in plan.items():
        try:
            layer = model.get_submodule(layer_name)
        except AttributeError:
            raise ValueError(f"load_model: {path!r} plans layer {layer_name!r}, which "
                             f"{name!r} does not have") from None
        model.set_submodule(layer_name, create_conv_like(spec, layer))
    return model


def _build(ref: str, kind: str, kwargs: dict[str, Any]) -> tuple[nn.Module, ModelInfo]:
    """A network reference (zoo, torchvision, timm) built with ``kwargs``."""
    if kind == "zoo":
        entry = model_entry(ref)
        model = create_model(ref, **kwargs)
        return model, ModelInfo(ref, kind, ref, kwargs.get("in_chans", entry.in_chans),
                                (entry.input_size, entry.input_size),
                                kwargs.get("num_classes", entry.num_classes), kwargs.get("conv"),
                                kwargs)
    name = ref.partition(":")[2]
    if kind == "torchvision":
        model = _torchvision(name, kwargs)
        num_classes = kwargs.get("num_classes", 1000)
    else:
        model = _timm(name, kwargs)
        num_classes = model.num_classes
    return model, ModelInfo(ref, kind, ref, kwargs.get("in_chans", 3), FOREIGN_INPUT_SIZE,
                            num_classes, None, kwargs)


def _builder_error(ref: str, kwargs: dict[str, Any], error: Exception) -> ValueError:
    return ValueError(f"load_model: {ref!r} does not take the keyword arguments "
                      f"{sorted(kwargs)} ({type(error).__name__}: {error})")


def _torchvision(name: str, kwargs: dict[str, Any]) -> nn.Module:
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        close = difflib.get_close_matches(name, available, n=5, cutoff=0.5)
        raise ValueError(f"load_model: torchvision has no model {name!r}; close matches: "
                         f"{', '.join(close) or 'none'} (torchvision.models.list_models() "
                         f"lists them)")
    kwargs = dict(kwargs)
    in_chans = kwargs.pop("in_chans", 3)
    if in_chans != 3:
        raise ValueError(f"load_model: in_chans={in_chans} is invalid for 'torchvision:{name}'"
                         f"; torchvision's models take 3 channels")
    try:
        return torchvision.models.get_model(name, weights=None, **kwargs)
    except TypeError as error:
        raise _builder_error(f"torchvision:{name}", kwargs, error) from None


def _timm(name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ValueError("load_model: 'timm:NAME' needs timm: pip install "
                         "'leanconv[compare]'") from None
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.5)
        raise ValueError(f"load_model: timm has no model {name!r}; close matches: "
                         f"{', '.join(close) or 'none'} (timm.list_models() lists them)")
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as error:
        raise _builder_error(f"timm:{name}", kwargs, error) from None


def _load_file(path: str) -> tuple[nn.Module, ModelInfo]:
    payload = safe_torch_load(path, "load_model: file", valid="leanconv loads training "
                              "checkpoints and `leanconv convert --out` files")
    kind = payload.get("format") if isinstance(payload, dict) else None
    if kind == CHECKPOINT_FORMAT:
        return _load_checkpoint(path, payload)
    if kind == CONVERTED_FORMAT:
        return _load_converted(path, payload)
    if isinstance(kind, str) and kind.startswith("leanconv-converted/"):
        raise ValueError(f"load_model: {path!r} was written by an older `leanconv convert` "
                         f"(format {kind!r}); re-run `leanconv convert ... --out {path}` to "
                         f"write format {CONVERTED_FORMAT!r}")
    found = f"format {kind!r}" if kind else describe_payload(payload)
    raise ValueError(f"load_model: {path!r} is not a leanconv file: expected a training "
                     f"checkpoint (format {CHECKPOINT_FORMAT!r}) or a `leanconv convert --out` "
                     f"file (format {CONVERTED_FORMAT!r}), found {found}")


def _field(path: str, record: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``record[key]``, which must be of type ``kind``: else the file is corrupt."""
    value = record.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"load_model: {path!r} is corrupt: its {key!r} is {value!r}")
    return value


def _network(path: str, record: dict[str, Any], ref_key: str, kwargs_key: str
             ) -> tuple[nn.Module, ModelInfo]:
    """The network a file records (a network reference, never another file), fresh."""
    ref = _field(path, record, ref_key, str)
    kind = reference_kind(ref)
    if kind == "file":
        raise ValueError(f"load_model: {path!r} is corrupt: it refers to the file {ref!r} "
                         f"instead of a network")
    return _build(ref, kind, dict(_field(path, record, kwargs_key, dict)))


def _load_weights(path: str, model: nn.Module, state_dict: object) -> None:
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as error:
        first_line = str(error).splitlines()[0][:300] if str(error) else ""
        raise ValueError(f"load_model: the weights in {path!r} do not fit the model it "
                         f"describes ({type(error).__name__}: {first_line})") from None


def _input_size(path: str, record: dict[str, Any]) -> tuple[int, int]:
    size = _field(path, record, "input_size", (list, tuple))
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f"load_model: {path!r} is corrupt: its input_size is {size!r}")
    return size[0], size[1]


def _adapted(info: ModelInfo, adapt: dict[str, Any]) -> tuple[int, int]:
    """(in_chans, num_classes) after the ``adapt`` record."""
    return adapt.get("in_chans", info.in_chans), adapt.get("num_classes", info.num_classes)


def _optional_dict(path: str, record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"load_model: {path!r} is corrupt: its {key!r} is {value!r}")
    return dict(value)


def _legacy_built(path: str, config: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint written before the trainer recorded its network built: a zoo model
    for Fashion-MNIST (1x28x28, 10 classes, the small-input stem where there is one)."""
    model = _field(path, config, "model", str)
    kwargs: dict[str, Any] = {"num_classes": 10, "in_chans": 1}
    if model_entry(model).small_input:
        kwargs["small_input"] = True
    if config.get("conv") not in (None, "standard"):
        kwargs["conv"] = config["conv"]
    return {"model": model, "kwargs": kwargs, "input_size": [28, 28]}


def _load_checkpoint(path: str, state: dict[str, Any]) -> tuple[nn.Module, ModelInfo]:
    config = _field(path, state, "config", dict)
    # a checkpoint written before the trainer recorded what it built: rebuilt the same way
    built = state.get("built") or _legacy_built(path, config)
    if not isinstance(built, dict):
        raise ValueError(f"load_model: {path!r} is corrupt: its 'built' is {built!r}")
    model, network = _network(path, built, "model", "kwargs")
    adapt, plan = _optional_dict(path, built, "adapt"), _optional_dict(path, built, "plan")
    model = _apply(path, model, network.model, adapt, plan)
    _load_weights(path, model, state.get("model"))
    in_chans, num_classes = _adapted(network, adapt)
    conv = built.get("conv", network.conv)
    return model, ModelInfo(path, "checkpoint", network.model, in_chans,
                            _input_size(path, built), num_classes, conv, network.kwargs, plan,
                            train_config=config, adapt=adapt,
                            data=_optional_dict(path, state, "data") or None)


def _load_converted(path: str, payload: dict[str, Any]) -> tuple[nn.Module, ModelInfo]:
    model, network = _network(path, payload, "base", "base_kwargs")
    adapt = _optional_dict(path, payload, "adapt")
    plan = _field(path, payload, "plan", dict)
    model = _apply(path, model, network.model, adapt, plan)
    _load_weights(path, model, payload.get("state_dict"))
    train_config = payload.get("train_config")
    in_chans, num_classes = _adapted(network, adapt)
    return model, ModelInfo(path, "converted", network.model, in_chans,
                            _input_size(path, payload), num_classes,
                            _field(path, payload, "to", str), network.kwargs, dict(plan),
                            _field(path, payload, "source", str),
                            None if train_config is None else dict(train_config), adapt,
                            _optional_dict(path, payload, "data") or None)
