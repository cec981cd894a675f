"""Checkpoints: plain dicts of tensors and plain types (``torch.load(weights_only=True)``),
written atomically (temporary file, fsync, rename), validated when read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leanconv.io import atomic_torch_save, describe_payload, safe_torch_load

FORMAT = "leanconv-checkpoint/1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format tag) so that a kill never leaves a broken file."""
    atomic_torch_save({"format": FORMAT, **state}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; ValueError otherwise."""
    state = safe_torch_load(path, "checkpoint", valid="give a training checkpoint that "
                            "leanconv's trainer wrote (runs/NAME/last.pt)")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        tag = state.get("format") if isinstance(state, dict) else None
        found = f"format {tag!r}" if tag else describe_payload(state)
        raise ValueError(f"checkpoint {str(path)!r} is not a leanconv training checkpoint "
                         f"(expected format {FORMAT!r}), found {found}")
    return state
