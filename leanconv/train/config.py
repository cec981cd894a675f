"""The training configuration: every knob with a sensible default, so no flag is needed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from leanconv.models.registry import model_entry
from leanconv.ops.create_conv import parse_conv_spec
from leanconv.train.data import IMAGE_SHAPE, NUM_CLASSES


@dataclass
class TrainConfig:
    """What ``leanconv train`` does. Defaults: SGD + Nesterov, 1 warm-up epoch then cosine,
    label smoothing 0.1, weight decay 5e-4 (not on norms and biases)."""

    model: str = "resnet20_cifar"
    conv: str | None = None
    data: str = "fashion-mnist"  # or "synthetic"
    data_dir: str | None = None
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
        model_entry(self.model)  # unknown model: ValueError with close matches
        if self.conv is not None and self.conv != "standard":
            parse_conv_spec(self.conv)
        choices = {"data": ("fashion-mnist", "synthetic"), "schedule": ("cosine", "onecycle"),
                   "device": ("cpu", "cuda")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"train: {name}={getattr(self, name)!r} is invalid; choose "
                                 f"one of {', '.join(valid)}")
        positive = ("epochs", "batch_size", "eval_batch_size", "subset", "threads")
        for name in positive:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"train: {name}={value!r} is invalid; expected an int >= 1")
        for name in ("lr", "max_minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"train: {name}={value!r} is invalid; expected a number > 0")
        for name in ("momentum", "weight_decay", "label_smoothing", "warmup_epochs"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"train: {name}={getattr(self, name)!r} is invalid; "
                                 f"expected a number >= 0")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"train: ema_decay={self.ema_decay!r} is invalid; expected 0 < "
                             f"ema_decay < 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_reference(self) -> dict[str, Any]:
        """The network this run trains, as its checkpoints record it: ``{"model": name,
        "kwargs": {...}, "input_size": [H, W]}``, built by ``leanconv.load_model(ref["model"],
        **ref["kwargs"])``: the data's channels and classes (``IMAGE_SHAPE``,
        ``NUM_CLASSES``), the small-input stem where the model has one, and ``conv`` unless
        it is standard."""
        channels, height, width = IMAGE_SHAPE
        kwargs: dict[str, Any] = {"num_classes": NUM_CLASSES, "in_chans": channels}
        if model_entry(self.model).small_input:
            kwargs["small_input"] = True
        if self.conv not in (None, "standard"):
            kwargs["conv"] = self.conv
        return {"model": self.model, "kwargs": kwargs, "input_size": [height, width]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"train: unknown configuration keys {unknown}; known: "
                             f"{', '.join(sorted(known))}")
        return cls(**values)
