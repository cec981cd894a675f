"""Training, evaluation and operator comparison (single process or DDP).

Names are imported on first use: :mod:`leanconv.loading` reads checkpoints through
:mod:`leanconv.train.checkpoint`, and importing this package for that must pull in neither
the configuration (which imports the loader) nor the trainer and its progress bar."""

from typing import Any

__all__ = ["TrainConfig", "evaluate", "train"]
_MODULES = {"TrainConfig": "config", "evaluate": "trainer", "train": "trainer"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        import importlib

        return getattr(importlib.import_module(f"leanconv.train.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'leanconv.train' has no attribute {name!r}")
