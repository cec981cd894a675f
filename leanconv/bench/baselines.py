"""The free baselines: what a trained model gets without changing the network, by running it
unchanged in each installed runtime (:mod:`leanconv.runtimes`: PyTorch folded, onnxruntime,
OpenVINO) in each precision it offers on this CPU (fp32, bf16, OpenVINO's default, int8
calibrated on the user's images).

Every artifact is timed in one side-by-side measurement (:func:`leanconv.runtimes.time_artifacts`:
the artifacts take turns in millisecond blocks, so drift on a shared machine hits them alike),
and each speed-up is the median of the per-round ratios to PyTorch fp32 (the folded model, as
leanconv deploys it today) from that same measurement. On the test split each artifact's
top-1 accuracy (where the data is labelled with the model's classes) and its top-1 agreement
with the PyTorch fp32 model are counted in one pass over the images.

``leanconv deploy-check`` prints them; ``leanconv shrink`` measures them first and compares its
result with the best of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from leanconv._validate import check_choice, check_input_shape, check_int, check_module
from leanconv.cost.latency import torch_threads
from leanconv.data import prepare
from leanconv.runtimes import RUNTIMES, Artifact, time_artifacts
from leanconv.tables import format_table

REFERENCE = ("torch", "fp32")  # the unchanged model as leanconv deploys it today
EVAL_BATCH = 1000  # test images per batch, as leanconv.train.evaluate


def _name(runtime: str, precision: str) -> str:
    return f"{runtime} {precision}"


@dataclass
class Baseline:
    """The unchanged model in one runtime and precision: its median latency ``ms`` and
    interquartile range ``iqr_ms``; ``speedup``: over PyTorch fp32 and
    ``speedup_in_runtime``: over this runtime's first precision (its fp32, or OpenVINO's
    default; the first one measured, should that one have been skipped), both the median of
    the paired per-round ratios of one side-by-side measurement;
    ``accuracy``: top-1 accuracy on the test split (None: the data has no labels of the
    model's classes, or no data was given); ``agreement``: the share of test images on which
    it predicts the same class as the PyTorch fp32 model (None: no data was given);
    ``detail``: what the runtime resolved (OpenVINO's inference precision, e.g. ``bf16``), or
    ``""``."""

    runtime: str
    precision: str
    ms: float
    iqr_ms: float
    speedup: float
    speedup_in_runtime: float
    accuracy: float | None
    agreement: float | None
    detail: str

    @property
    def name(self) -> str:
        """``runtime precision``, e.g. ``onnxruntime int8``."""
        return _name(self.runtime, self.precision)


@dataclass
class Baselines:
    """The free baselines of one model (:func:`free_baselines`): one :class:`Baseline` per
    runtime and precision measured (PyTorch fp32 first), the input shape and threads they were
    timed at, and ``skipped``: ``"runtime precision"`` -> why it was not measured (not
    installed, no native bf16 on this CPU, int8 without calibration images, a failed build);
    ``artifacts``: the built artifacts by row name, for this process (so that a caller can
    run or time a baseline again without building it again; not in :meth:`to_json`)."""

    rows: list[Baseline]
    input_shape: tuple[int, ...]
    threads: int
    skipped: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict, repr=False, compare=False)

    def row(self, runtime: str, precision: str) -> Baseline:
        """The row of ``runtime`` in ``precision``; a ``ValueError`` saying why there is none
        (it was skipped, or not asked for) and which rows there are."""
        for row in self.rows:
            if (row.runtime, row.precision) == (runtime, precision):
                return row
        name = _name(runtime, precision)
        why = (f"it was not measured: {self.skipped[name]}" if name in self.skipped
               else "it was not asked for")
        raise ValueError(f"Baselines.row: no baseline {name!r}: {why}; measured: "
                         f"{', '.join(r.name for r in self.rows)}")

    def rows_of(self, runtime: str) -> list[Baseline]:
        """The rows of ``runtime`` (a registered runtime's name), its first precision first;
        empty when none of its precisions was measured (:attr:`skipped` says why)."""
        check_choice("Baselines.rows_of", "runtime", runtime, RUNTIMES.keys())
        return [row for row in self.rows if row.runtime == runtime]

    def best(self, runtime: str | None = None, max_drop: float | None = None) -> Baseline:
        """The fastest row (the highest paired speed-up over PyTorch fp32), of ``runtime``
        when given; with ``max_drop``, only among the rows whose accuracy is at most
        ``max_drop`` below PyTorch fp32's (a fraction: 0.003 is 0.3 points), or whose top-1
        agreement with it is when there is no accuracy. PyTorch fp32 itself always
        qualifies. A ``ValueError`` when ``runtime`` has no row, when no row of it qualifies,
        or when ``max_drop`` is given but no data was (nothing to judge the drop by)."""
        owner = "Baselines.best"
        rows = self.rows
        if runtime is not None:
            check_choice(owner, "runtime", runtime, RUNTIMES.keys())
            rows = self.rows_of(runtime)
            if not rows:
                why = "; ".join(f"{name}: {reason}" for name, reason in self.skipped.items()
                                if name.split()[0] == runtime) or "it was not asked for"
                raise ValueError(f"{owner}: runtime={runtime!r} has no measured baseline "
                                 f"({why})")
        if max_drop is None:
            return max(rows, key=lambda row: row.speedup)
        if isinstance(max_drop, bool) or not isinstance(max_drop, int | float) or \
                not max_drop >= 0:
            raise ValueError(f"{owner}: max_drop={max_drop!r} is invalid; expected a number "
                             f">= 0 (a fraction of accuracy: 0.003 is 0.3 points)")
        key, reference = self.judged_by()
        if key is None:
            raise ValueError(f"{owner}: max_drop={max_drop} needs the test accuracy or the "
                             f"agreement of each baseline; free_baselines was given no dataset")
        kept = [row for row in rows if getattr(row, key) is not None
                and reference - getattr(row, key) <= max_drop + 1e-12]
        if not kept:
            raise ValueError(f"{owner}: no baseline of {runtime or 'any runtime'} is within "
                             f"max_drop={max_drop} of torch fp32's {key} "
                             f"({reference:.4f}); the best is "
                             f"{max(getattr(r, key) or 0.0 for r in rows):.4f}")
        return max(kept, key=lambda row: row.speedup)

    def judged_by(self) -> tuple[str | None, float]:
        """``(key, value)``: what a drop is counted in (``"accuracy"``, or ``"agreement"``
        where the data has no labels of the model's classes, or None without data) and
        PyTorch fp32's value of it."""
        reference = self.row(*REFERENCE)
        for key in ("accuracy", "agreement"):
            if getattr(reference, key) is not None:
                return key, getattr(reference, key)
        return None, 0.0

    def markdown(self) -> str:
        """The rows as a Markdown table (ms, speed-ups, accuracy and agreement in %), then one
        line per baseline that was not measured, with why."""
        header = ("runtime", "precision", "ms", "IQR ms", "vs torch fp32",
                  "vs runtime's first", "test accuracy %", "agreement %", "detail")
        rows = [(row.runtime, row.precision, f"{row.ms:.3f}", f"{row.iqr_ms:.3f}",
                 f"{row.speedup:.2f}x", f"{row.speedup_in_runtime:.2f}x", _percent(row.accuracy),
                 _percent(row.agreement), row.detail or None) for row in self.rows]
        lines = [format_table(header, rows, "md")]
        lines += [f"- not measured: {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-serialisable: ``input_shape``, ``threads``, ``reference``
        (``"torch fp32"``), ``rows`` (each :class:`Baseline`'s fields) and ``skipped``."""
        return {"input_shape": list(self.input_shape), "threads": self.threads,
                "reference": _name(*REFERENCE), "rows": [asdict(row) for row in self.rows],
                "skipped": dict(self.skipped)}


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.2f}"


def _detail(artifact: Artifact) -> str:
    """What the runtime resolved: OpenVINO's inference precision (``bf16``, ``f32``)."""
    return getattr(artifact, "inference_precision", None) or ""


def _check_args(owner: str, model: object, input_shape: object, threads: object,
                calibration: object, dataset: object, runtimes: object, rounds: object,
                min_run_time: object, progress: object) -> tuple[int, ...]:
    check_module(owner, "model", model)
    shape = check_input_shape(owner, input_shape)
    if len(shape) != 4:
        raise ValueError(f"{owner}: input_shape={input_shape!r} is invalid; expected (N, C, "
                         f"H, W), e.g. (1, 3, 224, 224)")
    check_int(owner, "threads", threads)
    check_int(owner, "rounds", rounds)
    if isinstance(min_run_time, bool) or not isinstance(min_run_time, int | float) or \
            not min_run_time > 0:
        raise ValueError(f"{owner}: min_run_time={min_run_time!r} is invalid; expected "
                         f"seconds > 0")
    if calibration is not None and (not isinstance(calibration, torch.Tensor)
                                    or calibration.dim() != 4 or not len(calibration)
                                    or tuple(calibration.shape[1:]) != shape[1:]):
        got = (tuple(calibration.shape) if isinstance(calibration, torch.Tensor)
               else type(calibration).__name__)
        raise ValueError(f"{owner}: calibration={got} is invalid; expected images (N, "
                         f"{', '.join(map(str, shape[1:]))}) like the input, or None (int8 "
                         f"is then skipped)")
    if dataset is not None:
        image_shape = getattr(dataset, "image_shape", None)
        if not hasattr(dataset, "test") or tuple(image_shape or ()) != shape[1:]:
            raise ValueError(f"{owner}: dataset of images {image_shape} is invalid; expected "
                             f"a leanconv Dataset of images {shape[1:]} (the input's C, H, W), "
                             f"or None")
    if runtimes is not None:
        if isinstance(runtimes, str) or not isinstance(runtimes, Sequence) or not runtimes:
            raise ValueError(f"{owner}: runtimes={runtimes!r} is invalid; expected a list of "
                             f"runtime names from {', '.join(RUNTIMES.keys())}, or None (all)")
        for name in runtimes:
            check_choice(owner, "runtimes", name, RUNTIMES.keys())
        if len(set(runtimes)) != len(runtimes):
            raise ValueError(f"{owner}: runtimes={list(runtimes)!r} names a runtime twice; "
                             f"give each once")
    if progress is not None and not callable(progress):
        raise ValueError(f"{owner}: progress={progress!r} is invalid; expected a function "
                         f"taking one line of text, or None")
    return shape


def _build_all(owner: str, model: nn.Module, shape: tuple[int, ...], threads: int,
               calibration: torch.Tensor | None, runtimes: Sequence[str] | None,
               say: Callable[[str], None]) -> tuple[dict[str, Artifact], dict[str, str]]:
    """Every runtime x precision asked for (PyTorch first: fp32 is the reference and always
    built) as artifacts, and why each of the others was skipped."""
    names = list(RUNTIMES.keys()) if runtimes is None else list(runtimes)
    names = [REFERENCE[0], *(name for name in names if name != REFERENCE[0])]
    artifacts: dict[str, Artifact] = {}
    skipped: dict[str, str] = {}
    for runtime_name in names:
        runtime = RUNTIMES.get(runtime_name)
        missing = runtime.missing()
        if missing is not None and runtimes is not None and runtime_name in runtimes:
            raise ValueError(f"{owner}: {missing}")
        for precision in runtime.precisions:
            name = _name(runtime_name, precision)
            if runtimes is not None and runtime_name not in runtimes and \
                    (runtime_name, precision) != REFERENCE:
                continue  # PyTorch fp32 is measured as the reference of the speed-ups
            why = missing or runtime.unsupported(precision)
            if why is None and precision == "int8" and calibration is None:
                why = "int8 needs calibration images; none were given"
            if why is not None:
                skipped[name] = why
                continue
            start = time.perf_counter()
            try:
                artifacts[name] = runtime.build(model, shape, precision, threads=threads,
                                                calibration=calibration)
            except Exception as error:  # any runtime's failure is one skipped row
                if (runtime_name, precision) == REFERENCE:
                    raise
                lines = str(error).strip().splitlines()
                skipped[name] = f"build failed: {type(error).__name__}: " \
                                f"{lines[0] if lines else ''}".rstrip(": ")
                say(f"baselines: {name}: {skipped[name]}")
                continue
            say(f"baselines: built {name} ({time.perf_counter() - start:.1f} s)")
    return artifacts, skipped


@torch.no_grad()
def _score(model: nn.Module, artifacts: dict[str, Artifact], dataset: Any, threads: int
           ) -> dict[str, tuple[float | None, float]]:
    """``name -> (accuracy, agreement)`` of each artifact on ``dataset.test`` in one pass
    (batches of :data:`EVAL_BATCH`, normalised as the data says): top-1 accuracy where the
    data is labelled with the model's classes (as many as its outputs), else None, and
    top-1 agreement with ``model``'s own predictions."""
    images = dataset.test
    hits = dict.fromkeys(artifacts, 0)
    agree = dict.fromkeys(artifacts, 0)
    labelled, count = None, 0
    for raw, labels in images.batches(torch.arange(len(images)), EVAL_BATCH):
        x = prepare(raw, "cpu", False, mean=dataset.mean, std=dataset.std)
        with torch_threads(threads), torch.inference_mode():
            reference = model(x).float()
        if labelled is None:
            labelled = bool(dataset.labeled) and dataset.num_classes == reference.shape[1]
        predicted = reference.argmax(1)
        for name, artifact in artifacts.items():
            out = artifact(x).argmax(1)
            agree[name] += int((out == predicted).sum())
            hits[name] += int((out == labels).sum())
        count += len(x)
    count = max(count, 1)
    return {name: (hits[name] / count if labelled else None, agree[name] / count)
            for name in artifacts}


def free_baselines(model: nn.Module, input_shape: tuple[int, ...], *, threads: int,
                   calibration: torch.Tensor | None, dataset: Any | None = None,
                   runtimes: Sequence[str] | None = None, rounds: int = 5,
                   min_run_time: float = 0.1,
                   progress: Callable[[str], None] | None = None) -> Baselines:
    """The unchanged ``model`` (eval mode; not changed) in every installed runtime and every
    precision it runs on this CPU (``runtimes``: only these; PyTorch fp32, the reference, is
    always measured), built at ``input_shape`` (N, C, H, W) with ``threads`` threads and
    timed side by side in one :func:`leanconv.runtimes.time_artifacts` call (about
    ``rounds x min_run_time`` seconds each, on one random input).

    ``calibration``: images (N, C, H, W, normalised as the model sees them, e.g.
    ``Dataset.model_inputs(n)``) that int8 is calibrated on; None: the int8 rows are skipped.
    ``dataset``: a :class:`leanconv.data.Dataset` of the input's images whose test split gives
    each row's accuracy (where its labels are the model's classes) and agreement with the
    PyTorch model; None: both None. A runtime that is not installed, a precision this CPU does
    not run natively and a build that fails are in :attr:`Baselines.skipped` with why; a
    runtime named in ``runtimes`` that is not installed is a ``ValueError`` naming the extra
    that installs it. ``progress``: called with one line per step."""
    owner = "free_baselines"
    shape = _check_args(owner, model, input_shape, threads, calibration, dataset, runtimes,
                        rounds, min_run_time, progress)
    say = progress or (lambda _: None)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        artifacts, skipped = _build_all(owner, model, shape, threads, calibration, runtimes,
                                        say)
        say(f"baselines: timing {len(artifacts)} artifacts side by side "
            f"({', '.join(artifacts)})")
        timed = time_artifacts(artifacts, torch.randn(shape), threads=threads, rounds=rounds,
                               min_run_time=min_run_time)
        scores = {name: (None, None) for name in artifacts}
        if dataset is not None:
            say(f"baselines: accuracy and agreement on {len(dataset.test)} test images of "
                f"{dataset.spec}")
            scores = _score(model, artifacts, dataset, threads)
    finally:
        for module, mode in modes.items():
            module.training = mode
    firsts: dict[str, str] = {}
    for name, artifact in artifacts.items():
        firsts.setdefault(artifact.runtime, name)
    rows = [Baseline(runtime=artifact.runtime, precision=artifact.precision,
                     ms=timed[name][0], iqr_ms=timed[name][1],
                     speedup=timed.speedup(name, _name(*REFERENCE)),
                     speedup_in_runtime=timed.speedup(name, firsts[artifact.runtime]),
                     accuracy=scores[name][0], agreement=scores[name][1],
                     detail=_detail(artifact))
            for name, artifact in artifacts.items()]
    return Baselines(rows=rows, input_shape=shape, threads=threads, skipped=skipped,
                     artifacts=artifacts)
