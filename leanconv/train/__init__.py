"""Training, evaluation and operator comparison (single process or DDP): :func:`train` runs
what a :class:`TrainConfig` says, :func:`evaluate` measures a model on a test set."""

from leanconv.train.config import TrainConfig
from leanconv.train.evaluate import evaluate
from leanconv.train.trainer import train

__all__ = ["TrainConfig", "evaluate", "train"]
