"""Evaluation: loss, accuracy and per-class accuracy of a model on a test set
(:func:`evaluate`, used by training, shrink and ``leanconv eval``); agreement with a reference
model where the images have no labels of the model's classes (:func:`evaluate_agreement`);
and evaluation of a saved model, a
training checkpoint (``best.pt`` / ``last.pt``) or a converted model saved by ``leanconv
convert`` (:func:`evaluate_checkpoint`, ``leanconv eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from leanconv._validate import check_int
from leanconv.data import Dataset, ImageSet, prepare
from leanconv.data.load import dataset_for_model, labels_apply
from leanconv.loading import ModelInfo, load_model, reference_kind
from leanconv.train.distributed import DistContext, all_reduce_sum


@torch.no_grad()
def evaluate(model: nn.Module, images: ImageSet, data: Dataset, batch_size: int,
             context: DistContext, channels_last: bool = False) -> dict[str, Any]:
    """Loss, accuracy and per-class accuracy of ``model`` on the whole set ``images``,
    normalised as ``data`` says, in ``data.num_classes`` classes. Ranks take disjoint strided
    shards (no padding, so no duplicated images bias the result) and sums are reduced."""
    model.eval()
    num_classes = data.num_classes
    order = torch.arange(context.rank, len(images), context.world)
    sums = torch.zeros(2 + 2 * num_classes, dtype=torch.float64)
    for raw, labels in images.batches(order, batch_size):
        x = prepare(raw, context.device, False, channels_last=channels_last, mean=data.mean,
                    std=data.std)
        y = labels.to(context.device)
        out = model(x).float()
        loss = nn.functional.cross_entropy(out, y, reduction="sum")
        hit = out.argmax(1) == y
        sums[0] += loss.item()
        sums[1] += hit.sum().item()
        sums[2:2 + num_classes] += torch.bincount(y.cpu(), minlength=num_classes).double()
        sums[2 + num_classes:] += torch.bincount(y[hit].cpu(), minlength=num_classes).double()
    sums = all_reduce_sum(sums.to(context.device), context).cpu()
    count = sums[2:2 + num_classes]
    return {"loss": (sums[0] / count.sum()).item(), "acc": (sums[1] / count.sum()).item(),
            "per_class_acc": (sums[2 + num_classes:] / count.clamp(min=1)).tolist(),
            "images": int(count.sum().item())}


@torch.no_grad()
def evaluate_agreement(model: nn.Module, reference: nn.Module, images: ImageSet, data: Dataset,
                       batch_size: int, context: DistContext, channels_last: bool = False
                       ) -> dict[str, Any]:
    """How closely ``model`` follows ``reference`` on the whole set ``images`` (normalised as
    ``data`` says), labels unused: ``agreement``, the share of images on which both predict
    the same class (top-1), and ``kl``, the mean KL(p_reference || p_model) of their softmax
    outputs. Ranks take disjoint strided shards and sums are reduced, as :func:`evaluate`."""
    model.eval()
    reference.eval()
    order = torch.arange(context.rank, len(images), context.world)
    sums = torch.zeros(3, dtype=torch.float64)
    for raw, _ in images.batches(order, batch_size):
        x = prepare(raw, context.device, False, channels_last=channels_last, mean=data.mean,
                    std=data.std)
        out = nn.functional.log_softmax(model(x).float(), dim=1)
        ref = nn.functional.log_softmax(reference(x).float(), dim=1)
        kl = nn.functional.kl_div(out, ref, reduction="sum", log_target=True)
        sums += torch.tensor([(out.argmax(1) == ref.argmax(1)).sum().item(), kl.item(),
                              len(x)], dtype=torch.float64)
    sums = all_reduce_sum(sums.to(context.device), context).cpu()
    count = max(sums[2].item(), 1.0)
    return {"agreement": sums[0].item() / count, "kl": sums[1].item() / count,
            "images": int(sums[2].item())}


def evaluate_checkpoint(path: str, data: str | None = None, *, batch_size: int = 1000,
                        **data_options: Any) -> dict[str, Any]:
    """Evaluate the model saved at ``path`` (loaded by :func:`leanconv.load_model`) on the
    test split of ``data`` (default: the data it was trained on, or Fashion-MNIST for a model
    that was not trained here; :func:`leanconv.data.load.dataset_for_model`, which
    ``data_options`` go to). Returns ``loss``, ``acc``, ``images``, ``per_class`` (class
    name -> accuracy) and ``data`` (the spec evaluated on).

    Where the data's labels are not the model's classes (unlabeled ``images:DIR``, another
    set of classes), the model is compared with the saved model it was made from instead
    (:func:`evaluate_agreement`; a converted file's source, or the teacher a checkpoint was
    distilled from, such as shrink's fine-tuned ``model.pt``): the result holds
    ``agreement``, ``kl``, ``images``, ``reference`` (the file compared with), ``no_accuracy``
    (why) and ``data``. Without such a file, ValueError saying why there is no accuracy."""
    check_int("eval", "batch_size", batch_size)
    if reference_kind(path) != "file":
        raise ValueError(f"eval: checkpoint={path!r} is a model name, not a saved model; give "
                         f"a training checkpoint (runs/NAME/best.pt) or a `leanconv convert "
                         f"--out` file")
    model, info = load_model(path)
    dataset = dataset_for_model(info, data, need_labels=False, **data_options)
    problem = labels_apply(info, dataset)
    if problem is None:
        result = evaluate(model, dataset.test, dataset, batch_size, DistContext())
        result["per_class"] = dict(zip(dataset.classes, result.pop("per_class_acc"),
                                       strict=True))
    else:
        original = _original_file(path, info, problem)
        result = evaluate_agreement(model, load_model(original)[0], dataset.test, dataset,
                                    batch_size, DistContext())
        result.update(reference=original, no_accuracy=problem)
    result["data"] = dataset.spec
    return result


def _original_file(path: str, info: ModelInfo, problem: str) -> str:
    """The saved model to compare ``path`` with where the labels do not give accuracy
    (``problem`` says why): the file a converted model was made from, or the teacher a
    checkpoint was distilled from (shrink's fine-tuned model.pt); ValueError when there is
    none."""
    if info.kind == "converted":
        original, made = info.base, "converted from"
    else:
        original, made = (info.train_config or {}).get("teacher"), "distilled from"
    if original and reference_kind(original) == "file":
        if Path(original).is_file():
            return original
        why = f"the file it was {made}, {original!r}, is gone"
    elif original:
        why = (f"it was {made} {original!r}, a network built from its name with random "
               f"weights, not a saved model to compare with")
    else:
        why = "it is a training checkpoint trained without a teacher"
    raise ValueError(f"eval: {problem}: accuracy needs images labelled with the model's "
                     f"classes, and agreement needs the original: {why}")
