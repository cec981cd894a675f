"""``leanconv eval``: test accuracy, loss and per-class accuracy of a saved model: a training
checkpoint (``best.pt`` / ``last.pt``) or a converted model saved by ``leanconv convert``."""

from __future__ import annotations

from typing import Any

import torch

from leanconv.convert import SAVE_FORMAT, load_converted
from leanconv.train.checkpoint import FORMAT, load_checkpoint
from leanconv.train.config import TrainConfig
from leanconv.train.data import CLASSES
from leanconv.train.distributed import DistContext
from leanconv.train.trainer import build_model, evaluate, load_data


def evaluate_checkpoint(path: str, data: str | None = None, data_dir: str | None = None,
                        batch_size: int = 1000) -> dict[str, Any]:
    """Evaluate the model saved at ``path`` on the test set of ``data`` (default: the data it
    was trained on, or Fashion-MNIST for a converted model)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"eval: checkpoint {path!r} does not exist") from None
    except Exception as error:
        raise ValueError(f"eval: {path!r} is not a leanconv checkpoint ({error})") from None
    kind = payload.get("format") if isinstance(payload, dict) else None
    if kind == FORMAT:
        state = load_checkpoint(path)
        config = TrainConfig.from_dict({**state["config"], "resume": False, "out": None})
        model = build_model(config)
        model.load_state_dict(state["model"])
    elif kind == SAVE_FORMAT:
        model = load_converted(path)
        config = TrainConfig(data="fashion-mnist")
    else:
        raise ValueError(f"eval: {path!r} is neither a training checkpoint ({FORMAT!r}) nor a "
                         f"converted model ({SAVE_FORMAT!r})")
    overrides = {k: v for k, v in {"data": data, "data_dir": data_dir}.items() if v}
    config = TrainConfig.from_dict({**config.to_dict(), **overrides, "subset": None})
    dataset = load_data(config)
    result = evaluate(model, dataset.test_x, dataset.test_y, batch_size, DistContext())
    result["per_class"] = dict(zip(CLASSES, result.pop("per_class_acc"), strict=True))
    return result
