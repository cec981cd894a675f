"""``leanconv eval``: test accuracy, loss and per-class accuracy of a saved model: a training
checkpoint (``best.pt`` / ``last.pt``) or a converted model saved by ``leanconv convert``
(e.g. a trained model converted to HetConv: ``leanconv convert runs/X/best.pt --to
hetconv:p=4 --out het.pt``)."""

from __future__ import annotations

from typing import Any

from leanconv.data.load import dataset_for_model
from leanconv.loading import load_model, reference_kind
from leanconv.ops._validate import check_int
from leanconv.train.distributed import DistContext
from leanconv.train.trainer import evaluate


def evaluate_checkpoint(path: str, data: str | None = None, *, batch_size: int = 1000,
                        **data_options: Any) -> dict[str, Any]:
    """Evaluate the model saved at ``path`` (loaded by :func:`leanconv.load_model`) on the
    test split of ``data`` (default: the data it was trained on, or Fashion-MNIST for a model
    that was not trained here; :func:`leanconv.data.load.dataset_for_model`, which
    ``data_options`` go to). Returns ``loss``, ``acc``, ``images``, ``per_class`` (class
    name -> accuracy) and ``data`` (the spec evaluated on)."""
    check_int("eval", "batch_size", batch_size)
    if reference_kind(path) != "file":
        raise ValueError(f"eval: checkpoint={path!r} is a model name, not a saved model; give "
                         f"a training checkpoint (runs/NAME/best.pt) or a `leanconv convert "
                         f"--out` file")
    model, info = load_model(path)
    dataset = dataset_for_model(info, data, **data_options)
    result = evaluate(model, dataset.test, dataset, batch_size, DistContext())
    result["per_class"] = dict(zip(dataset.classes, result.pop("per_class_acc"), strict=True))
    result["data"] = dataset.spec
    return result
