"""The model zoo: one file per family, every builder registered by name."""

from leanconv.models import mixnet, mobilenet, resnet, shufflenet, vgg  # noqa: F401 (register)
from leanconv.models.base import ClassifierHead, LeanNet
from leanconv.models.registry import create_model, list_models, model_entry, register_model

__all__ = ["ClassifierHead", "LeanNet", "create_model", "list_models", "model_entry",
           "register_model"]
