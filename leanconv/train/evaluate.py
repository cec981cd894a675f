"""``leanconv eval``: test accuracy, loss and per-class accuracy of a saved model: a training
checkpoint (``best.pt`` / ``last.pt``) or a converted model saved by ``leanconv convert``
(e.g. a trained model converted to HetConv: ``leanconv convert runs/X/best.pt --to
hetconv:p=4 --out het.pt``)."""

from __future__ import annotations

from typing import Any

import torch

from leanconv.convert import SAVE_FORMAT, load_converted
from leanconv.references import model_from_checkpoint
from leanconv.train.checkpoint import FORMAT
from leanconv.train.config import TrainConfig
from leanconv.train.data import CLASSES
from leanconv.train.distributed import DistContext
from leanconv.train.trainer import evaluate, load_data


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
        model, config = model_from_checkpoint(path)
    elif kind == SAVE_FORMAT:
        model = load_converted(path)
        source = payload["model"]
        config = model_from_checkpoint(source)[1] if source.endswith(".pt") else TrainConfig()
    else:
        raise ValueError(f"eval: {path!r} is neither a training checkpoint ({FORMAT!r}) nor a "
                         f"converted model ({SAVE_FORMAT!r})")
    overrides = {k: v for k, v in {"data": data, "data_dir": data_dir}.items() if v}
    config = TrainConfig.from_dict({**config.to_dict(), **overrides, "subset": None})
    dataset = load_data(config)
    result = evaluate(model, dataset.test_x, dataset.test_y, batch_size, DistContext())
    result["per_class"] = dict(zip(CLASSES, result.pop("per_class_acc"), strict=True))
    return result
