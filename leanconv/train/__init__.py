"""Training, evaluation and operator comparison on Fashion-MNIST (single process or DDP)."""

from leanconv.train.config import TrainConfig
from leanconv.train.trainer import evaluate, train

__all__ = ["TrainConfig", "evaluate", "train"]
