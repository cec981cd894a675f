"""Model references the CLI accepts: a zoo name, ``torchvision:NAME`` or ``timm:NAME``
(randomly initialised: leanconv never downloads weights)."""

from __future__ import annotations

from typing import Any

from torch import nn

from leanconv.models.registry import create_model


def build_model(reference: str, **kwargs: Any) -> nn.Module:
    """Build the model ``reference`` names; ValueError naming what would be valid."""
    if not isinstance(reference, str) or not reference:
        raise ValueError(f"model reference {reference!r} is invalid; give a zoo name, "
                         f"'torchvision:NAME' or 'timm:NAME'")
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
            raise ValueError(f"timm has no model {name!r}")
        return timm.create_model(name, pretrained=False, **kwargs)
    raise ValueError(f"model reference {reference!r} is invalid; the prefix must be "
                     f"'torchvision:' or 'timm:' (or none for a zoo name)")
