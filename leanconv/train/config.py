"""The training configuration: every knob with a sensible default, so no flag is needed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from leanconv.data.load import DEFAULT_CACHE_MB, parse_data_spec
from leanconv.loading import reference_kind
from leanconv.ops.create_conv import parse_conv_spec

DEFAULT_MODEL = "resnet20_cifar"


@dataclass
class TrainConfig:
    """What ``leanconv train`` does. Defaults: SGD + Nesterov, 1 warm-up epoch (at most 10%
    of the run) then cosine, label smoothing 0.1, weight decay 5e-4 (not on norms and
    biases).

    ``model``: anything :func:`leanconv.load_model` takes (a file: the network it records,
    freshly initialised); default ``init``'s network when ``init`` is given, else
    resnet20_cifar. ``init``: a checkpoint or converted file whose weights the run starts
    from (new optimiser and schedule). ``teacher``: a model reference to distil from, with
    ``distill_weight`` (default 0.9 with a teacher) and ``distill_temperature``.
    ``data``: ``fashion-mnist``, ``imagefolder:DIR``, ``images:DIR`` (unlabeled: with a teacher
    and ``distill_weight=1`` only) or ``synthetic``
    (:func:`leanconv.data.load_dataset`, with ``data_dir``, ``image_size``, ``in_chans``,
    ``val_split``, ``cache_mb``, ``skip_bad_images``, ``workers``).
    """

    model: str | None = None
    conv: str | None = None
    init: str | None = None
    teacher: str | None = None
    distill_weight: float | None = None
    distill_temperature: float = 4.0
    data: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None
    in_chans: int | None = None
    val_split: float = 0.1
    cache_mb: float = DEFAULT_CACHE_MB
    skip_bad_images: bool = False
    workers: int | None = None
    subset: int | None = None
    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # or "onecycle"
    ema: bool = False
    ema_decay: float = 0.999
    seed: int = 0
    deterministic: bool = False
    amp: bool = False
    channels_last: bool = False
    device: str = "cpu"
    threads: int | None = None
    max_minutes: float | None = None
    eval_batch_size: int = 1000
    out: str | None = None
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = self.init or DEFAULT_MODEL
        for name in ("model", "init", "teacher"):
            value = getattr(self, name)
            if value is None:
                continue
            kind = reference_kind(value)  # an unknown name: ValueError with close matches
            if name == "init" and kind != "file":
                raise ValueError(f"train: init={value!r} is invalid; expected a training "
                                 f"checkpoint or a `leanconv convert --out` file")
        if self.conv is not None and self.conv != "standard":
            parse_conv_spec(self.conv)
        if parse_data_spec(self.data)[0] == "images" and (self.teacher is None
                                                          or self.distill_weight != 1):
            raise ValueError(f"train: data={self.data!r} has no labels; learn from a teacher's "
                             f"outputs alone instead (teacher=MODEL, distill_weight=1: "
                             f"--teacher MODEL --distill-weight 1)")
        choices = {"schedule": ("cosine", "onecycle"), "device": ("cpu", "cuda")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"train: {name}={getattr(self, name)!r} is invalid; choose "
                                 f"one of {', '.join(valid)}")
        positive = ("epochs", "batch_size", "eval_batch_size", "subset", "threads",
                    "image_size", "workers")
        for name in positive:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"train: {name}={value!r} is invalid; expected an int >= 1")
        if self.in_chans not in (None, 1, 3):
            raise ValueError(f"train: in_chans={self.in_chans!r} is invalid; valid: 1 or 3")
        for name in ("lr", "max_minutes", "distill_temperature", "cache_mb"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"train: {name}={value!r} is invalid; expected a number > 0")
        for name in ("momentum", "weight_decay", "label_smoothing", "warmup_epochs"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"train: {name}={getattr(self, name)!r} is invalid; "
                                 f"expected a number >= 0")
        for name, value in (("ema_decay", self.ema_decay), ("val_split", self.val_split)):
            if not 0 < value < 1:
                raise ValueError(f"train: {name}={value!r} is invalid; expected 0 < {name} "
                                 f"< 1")
        if self.distill_weight is not None:
            if self.teacher is None:
                raise ValueError(f"train: distill_weight={self.distill_weight!r} needs a "
                                 f"teacher; give --teacher REF or leave the weight out")
            if not 0 <= self.distill_weight <= 1:
                raise ValueError(f"train: distill_weight={self.distill_weight!r} is invalid; "
                                 f"expected 0 <= distill_weight <= 1")
        if self.init is not None and self.model != self.init:
            raise ValueError(f"train: init={self.init!r} sets the network (its architecture "
                             f"and weights); leave model={self.model!r} out or give the same "
                             f"file")
        if self.init is not None and self.resume:
            raise ValueError("train: give either init (start a new run from a file's weights) "
                             "or resume (continue this run's last.pt), not both")

    @property
    def distill(self) -> float:
        """The distillation weight a: 0 without a teacher, default 0.9 with one."""
        if self.teacher is None:
            return 0.0
        return 0.9 if self.distill_weight is None else self.distill_weight

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"train: unknown configuration keys {unknown}; known: "
                             f"{', '.join(sorted(known))}")
        return cls(**values)
