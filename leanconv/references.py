"""Model references the CLI and ``load_converted`` accept: a zoo name, ``torchvision:NAME``,
``timm:NAME`` (randomly initialised: leanconv never downloads weights), or the path of a
training checkpoint (``runs/NAME/best.pt``: the trained model, with its weights)."""

from __future__ import annotations

from typing import Any

from torch import nn

from leanconv.models.registry import create_model
from leanconv.train.checkpoint import load_checkpoint
from leanconv.train.config import TrainConfig
from leanconv.train.trainer import build_model as build_trained_model


def model_from_checkpoint(path: str) -> tuple[nn.Module, TrainConfig]:
    """The model a training checkpoint holds (weights loaded) and its configuration."""
    state = load_checkpoint(path)
    config = TrainConfig.from_dict({**state["config"], "resume": False, "out": None})
    model = build_trained_model(config)
    model.load_state_dict(state["model"])
    return model, config


def build_model(reference: str, **kwargs: Any) -> nn.Module:
    """Build the model ``reference`` names; ValueError naming what would be valid."""
    if not isinstance(reference, str) or not reference:
        raise ValueError(f"model reference {reference!r} is invalid; give a zoo name, "
                         f"'torchvision:NAME', 'timm:NAME' or a checkpoint path (.pt)")
    if reference.endswith(".pt"):
        return model_from_checkpoint(reference)[0]
    source, _, name = reference.partition(":")
    if not name:
        return create_model(reference, **kwargs)
    if source == "torchvision":
        import torchvision

        available = torchvision.models.list_models()
        if name not in available:
            raise ValueError(f"torchvision has no model {name!r}; e.g. "
                             f"{', '.join(available[:8])} ...")
        return torchvision.models.get_model(name, weights=None, **kwargs)
    if source == "timm":
        try:
            import timm
        except ImportError:
            raise ValueError("timm:NAME needs timm: pip install 'leanconv[compare]'") from None
        if not timm.list_models(name):
            close = timm.list_models(f"*{name[:6]}*")[:8]
            raise ValueError(f"timm has no model {name!r}; similar names: "
                             f"{', '.join(close) or 'none (see timm.list_models())'}")
        return timm.create_model(name, pretrained=False, **kwargs)
    raise ValueError(f"model reference {reference!r} is invalid; the prefix must be "
                     f"'torchvision:' or 'timm:' (or none for a zoo name)")
