"""``leanconv eval``: test accuracy, loss and per-class accuracy of a saved model: a training
checkpoint (``best.pt`` / ``last.pt``) or a converted model saved by ``leanconv convert``
(e.g. a trained model converted to HetConv: ``leanconv convert runs/X/best.pt --to
hetconv:p=4 --out het.pt``)."""

from __future__ import annotations

from typing import Any

from leanconv.loading import load_model, reference_kind
from leanconv.ops._validate import check_int
from leanconv.train.config import TrainConfig
from leanconv.train.data import CLASSES, IMAGE_SHAPE, NUM_CLASSES
from leanconv.train.distributed import DistContext
from leanconv.train.trainer import evaluate, load_data


def evaluate_checkpoint(path: str, data: str | None = None, data_dir: str | None = None,
                        batch_size: int = 1000) -> dict[str, Any]:
    """Evaluate the model saved at ``path`` (loaded by :func:`leanconv.load_model`) on the
    test set of ``data`` (default: the data it was trained on, or Fashion-MNIST for a
    converted model that was not trained here). Returns ``loss``, ``acc``, ``images`` and
    ``per_class`` (class name -> accuracy)."""
    check_int("eval", "batch_size", batch_size)
    if reference_kind(path) != "file":
        raise ValueError(f"eval: checkpoint={path!r} is a model name, not a saved model; give "
                         f"a training checkpoint (runs/NAME/best.pt) or a `leanconv convert "
                         f"--out` file")
    model, info = load_model(path)
    if (info.in_chans, info.num_classes) != (IMAGE_SHAPE[0], NUM_CLASSES):
        raise ValueError(f"eval: {path!r} holds {info.model!r} for {info.in_chans}-channel "
                         f"input with {info.num_classes} classes; the test data has "
                         f"{IMAGE_SHAPE[0]}-channel images and {NUM_CLASSES} classes")
    overrides = {k: v for k, v in {"data": data, "data_dir": data_dir}.items() if v}
    trained = info.train_config or {}
    config = TrainConfig.from_dict({**trained, **overrides, "subset": None})
    dataset = load_data(config)
    result = evaluate(model, dataset.test_x, dataset.test_y, batch_size, DistContext())
    result["per_class"] = dict(zip(CLASSES, result.pop("per_class_acc"), strict=True))
    return result
