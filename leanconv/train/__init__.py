"""Training, evaluation and operator comparison on Fashion-MNIST (single process or DDP).

``train`` and ``evaluate`` live in :mod:`leanconv.train.trainer`, imported on first use:
importing this package (as ``leanconv.load_model`` does, for checkpoints) must not pull in
the trainer and its progress bar."""

from typing import Any

from leanconv.train.config import TrainConfig

__all__ = ["TrainConfig", "evaluate", "train"]
_FROM_TRAINER = ("evaluate", "train")


def __getattr__(name: str) -> Any:
    if name in _FROM_TRAINER:
        from leanconv.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'leanconv.train' has no attribute {name!r}")
