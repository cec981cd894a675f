"""Evaluation: loss, accuracy and per-class accuracy of a model on a test set
(:func:`evaluate`, used by training, shrink and ``leanconv eval``); agreement with a reference
model where the images have no labels of the model's classes (:func:`evaluate_agreement`);
and evaluation of a saved model, a
training checkpoint (``best.pt`` / ``last.pt``) or a converted model saved by ``leanconv
convert`` (:func:`evaluate_checkpoint`, ``leanconv eval``), or a runtime artifact
(``model.onnx``, OpenVINO's ``model.xml``; :func:`evaluate_artifact`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leanconv._validate import check_int, check_threads
from leanconv.data import Dataset, ImageSet, prepare
from leanconv.data.load import dataset_for_model, labels_apply
from leanconv.loading import ModelInfo, load_model, reference_kind
from leanconv.runtimes import Artifact, load_artifact
from leanconv.train.distributed import DistContext, all_reduce_sum

ARTIFACT_SUFFIXES = (".onnx", ".xml")  # runtime artifacts: onnxruntime, OpenVINO IR


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
    (why) and ``data``. Without such a file, ValueError saying why there is no accuracy.

    A runtime artifact (``.onnx``, ``.xml``) is evaluated by :func:`evaluate_artifact`."""
    check_int("eval", "batch_size", batch_size)
    if Path(path).suffix in ARTIFACT_SUFFIXES:
        return evaluate_artifact(path, data, batch_size=batch_size, **data_options)
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


def evaluate_artifact(path: str, data: str | None = None, *, batch_size: int = 1000,
                      threads: int | None = None, **data_options: Any) -> dict[str, Any]:
    """Evaluate the runtime artifact at ``path`` (``model.onnx`` in onnxruntime, OpenVINO's
    ``model.xml`` with its ``.bin``; :func:`leanconv.runtimes.load_artifact`, run with
    ``threads`` threads, default torch's) on the test split of ``data``, as
    :func:`evaluate_checkpoint` does a saved model: ``loss``, ``acc``, ``images``,
    ``per_class``, ``data``, and the artifact's ``runtime`` and ``precision``.

    The model info the artifact records (leanconv writes it into the file) gives the data it
    was trained on (the default of ``data``) and its normalisation; an artifact without it
    (exported elsewhere) needs ``data``, and its images are normalised by the data's own
    statistics. The images are loaded at the artifact's input (C, H, W), which is fixed when
    it is built; ``data_options`` go to :func:`leanconv.data.load.dataset_for_model`. A
    ``ValueError`` when ``data_options`` make other images than the artifact takes, or when
    the data is not labelled with the model's classes (an artifact has no original to measure
    agreement with)."""
    owner = "eval"
    check_int(owner, "batch_size", batch_size)
    check_threads(owner, threads)
    artifact = load_artifact(path, threads or torch.get_num_threads())
    channels, height, width = artifact.input_shape[1:]
    if height != width:
        raise ValueError(f"{owner}: {path!r} takes {height}x{width} images; leanconv's data is "
                         f"square, so it cannot be evaluated here")
    info = _artifact_info(path, artifact, data)
    # the artifact's input is what the images must be, whatever size the model was trained at
    info = dataclasses.replace(info, in_chans=channels, input_size=(height, width))
    side = data_options.get("image_size", height)
    asked = (data_options.get("in_chans", channels), side, side)
    if asked != (channels, height, width):  # before loading any data
        spec = data or (info.train_config or {}).get("data") or "fashion-mnist"
        _wrong_images(path, (channels, height, width), spec, asked, data_options)
    dataset = dataset_for_model(info, data, need_labels=False, **data_options)
    if tuple(dataset.image_shape) != (channels, height, width):
        _wrong_images(path, (channels, height, width), dataset.spec,
                      tuple(dataset.image_shape), data_options)
    problem = labels_apply(info, dataset)
    if problem is not None:
        raise ValueError(f"{owner}: {problem}: accuracy needs images labelled with the model's "
                         f"classes, and a runtime artifact has no original to measure "
                         f"agreement with (evaluate the .pt it was built from instead)")
    result = evaluate(artifact, dataset.test, dataset, batch_size, DistContext())
    result["per_class"] = dict(zip(dataset.classes, result.pop("per_class_acc"), strict=True))
    result.update(data=dataset.spec, runtime=artifact.runtime, precision=artifact.precision)
    return result


def _wrong_images(path: str, takes: tuple[int, ...], spec: str, gives: tuple[int, ...],
                  data_options: dict[str, Any]) -> None:
    """The ``ValueError`` for data whose images (C, H, W) are not what the artifact takes."""
    given = " and ".join(f"--{name.replace('_', '-')} {data_options[name]}"
                         for name in ("image_size", "in_chans") if name in data_options)
    raise ValueError(f"eval: {path!r} takes images of (C, H, W) = {takes}; data={spec!r} "
                     f"gives {gives}{f' (with {given})' if given else ''}: give --image-size "
                     f"{takes[1]} --in-chans {takes[0]} (or leave them out), or rebuild the "
                     f"artifact with --input {'x'.join(map(str, gives))}")


def _artifact_info(path: str, artifact: Artifact, data: str | None) -> ModelInfo:
    """The model info ``artifact`` records (:func:`dataclasses.asdict` of a
    :class:`ModelInfo`, JSON has made ``input_size`` a list), or, for an artifact that
    records none, a minimal one from its input and outputs (kind ``"file"``: all that is known
    is that it is a saved file), which needs ``data``."""
    metadata = dict(artifact.metadata)
    if metadata:
        try:
            metadata["input_size"] = tuple(metadata["input_size"])
            return ModelInfo(**metadata)
        except (KeyError, TypeError) as error:
            raise ValueError(f"eval: {path!r} records metadata that is not a leanconv model "
                             f"info ({type(error).__name__}: {error}); was it written by "
                             f"another version?") from None
    if data is None:
        raise ValueError(f"eval: {path!r} records no model info (it was not written by "
                         f"leanconv), so the data it was trained on is unknown; give --data")
    channels, height, width = artifact.input_shape[1:]
    outputs = artifact(torch.zeros(1, channels, height, width)).shape[-1]
    return ModelInfo(source=str(path), kind="file", model=str(path), in_chans=channels,
                     input_size=(height, width), num_classes=int(outputs))
