"""The on-disk cache of a decoded image folder: one torch file per (file list, settings).

A cache file holds both splits as uint8 tensors, the indices of the files they hold, the
labels, the classes and the training mean and std. Its name is ``<settings>-<key>.pt``: the
key is a hash of the format version, every image file's relative path, size and mtime_ns and
the decode settings (:func:`cache_key`), so that any change to the files gives a new name and
a rebuild. It lives in ``ROOT/.leanconv-cache/`` (a hidden folder, which the folder scan
ignores), or, when ``ROOT`` is not writable, in ``$XDG_CACHE_HOME/leanconv/imagefolder/<hash of
ROOT>/`` (``~/.cache`` when ``XDG_CACHE_HOME`` is unset). After a new file is written, older
files with the same settings (stale file lists) are removed from its folder; files for other
settings (another image size, say) are kept.

Files are written atomically (:func:`leanconv.io.atomic_torch_save`) and read with
``weights_only=True``; a file cut short, unreadable or disagreeing with what the folder holds
now raises :class:`CacheError` naming why (:func:`read_cache`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from leanconv.io import atomic_torch_save, user_cache_dir

FORMAT_VERSION = 1
CACHE_DIRNAME = ".leanconv-cache"


class CacheError(Exception):
    """A cache file that cannot be used (the message says why); it is rebuilt."""


def cache_key(files: Iterable[tuple[str, int, int]], settings: dict[str, Any]) -> str:
    """Hex SHA-256 of the format version, ``settings`` and every ``(relative path, size,
    mtime_ns)`` of ``files`` (in their order)."""
    digest = hashlib.sha256(f"leanconv-imagefolder-cache v{FORMAT_VERSION}\n".encode())
    digest.update(repr(sorted(settings.items())).encode())
    for rel, size, mtime_ns in files:
        digest.update(f"\n{rel}\0{size}\0{mtime_ns}".encode())
    return digest.hexdigest()


def file_stats(root: Path, rels: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(rel, size, mtime_ns)`` of each file (symlinks followed; (-1, -1) for one that
    cannot be stat'ed, which the decoder then reports)."""
    out = []
    for rel in rels:
        try:
            stat = os.stat(os.path.join(root, rel))
            out.append((rel, stat.st_size, stat.st_mtime_ns))
        except OSError:
            out.append((rel, -1, -1))
    return out


def settings_tag(image_size: int, in_chans: int, val_split: float, skip_bad: bool) -> str:
    """The readable start of a cache file's name, e.g. ``64px-3ch-val0.1-strict``."""
    return f"{image_size}px-{in_chans}ch-val{val_split:g}-{'skip' if skip_bad else 'strict'}"


def fallback_dir(root: Path) -> Path:
    """Where the cache of a read-only ``root`` goes: ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    ``/leanconv/imagefolder/<hash of the resolved root>``."""
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return user_cache_dir("imagefolder", tag)


def cache_dirs(root: Path) -> tuple[Path, Path]:
    """The two places a cache file may be: next to the data, then the user's cache folder."""
    return root / CACHE_DIRNAME, fallback_dir(root)


def find_cache(root: Path, name: str) -> Path | None:
    """The first existing ``name`` in :func:`cache_dirs`, else None."""
    for folder in cache_dirs(root):
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass(frozen=True)
class Expected:
    """What a cache file must agree with: the key, the classes, the image shape, and the
    labels of every file of each split (in the stored order)."""

    key: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    train_labels: torch.Tensor
    test_labels: torch.Tensor


def read_cache(path: Path, expected: Expected) -> dict[str, Any]:
    """The payload of the cache file at ``path``, checked against ``expected``;
    :class:`CacheError` saying why it cannot be used."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        first = str(error).splitlines()[0][:160] if str(error) else ""
        raise CacheError(f"unreadable ({type(error).__name__}: {first})") from None
    if not isinstance(payload, dict):
        raise CacheError(f"holds a {type(payload).__name__}, not a cache dict")
    if payload.get("format") != FORMAT_VERSION:
        raise CacheError(f"format {payload.get('format')!r}, expected {FORMAT_VERSION}")
    if payload.get("key") != expected.key:
        raise CacheError("its stored key differs from its name's (files changed)")
    if tuple(payload.get("classes", ())) != expected.classes:
        raise CacheError(f"classes {payload.get('classes')!r} differ from the folder's")
    channels = expected.image_shape[0]
    for stat in ("mean", "std"):
        values = payload.get(stat)
        if (not isinstance(values, list) or len(values) != channels
                or not all(isinstance(v, float) for v in values)):
            raise CacheError(f"{stat} {values!r} is not {channels} float(s)")
    skipped = payload.get("skipped")
    if not isinstance(skipped, list) or not all(isinstance(s, str) for s in skipped):
        raise CacheError("its list of skipped files is missing")
    held = 0
    for split, labels in (("train", expected.train_labels), ("test", expected.test_labels)):
        images, kept = payload.get(f"{split}_images"), payload.get(f"{split}_kept")
        stored = payload.get(f"{split}_labels")
        if not all(isinstance(t, torch.Tensor) for t in (images, kept, stored)):
            raise CacheError(f"its {split} tensors are missing")
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != expected.image_shape:
            raise CacheError(f"{split} images are {images.dtype} {tuple(images.shape)}, "
                             f"expected uint8 (N, {', '.join(map(str, expected.image_shape))})")
        if kept.dtype != torch.int64 or kept.dim() != 1 or len(kept) != len(images):
            raise CacheError(f"{split}: {len(images)} images but {tuple(kept.shape)} indices")
        if len(kept) and (kept.min() < 0 or kept.max() >= len(labels)
                          or (len(kept) > 1 and not bool((kept[1:] > kept[:-1]).all()))):
            raise CacheError(f"{split} file indices are out of range or out of order")
        if stored.dtype != torch.int64 or not torch.equal(stored, labels[kept]):
            raise CacheError(f"{split} labels disagree with the folder's")
        held += len(kept)
    total = len(expected.train_labels) + len(expected.test_labels)
    if held + len(skipped) != total:
        raise CacheError(f"holds {held} images and {len(skipped)} skipped, the folder "
                         f"{total} files")
    return payload


def write_cache(root: Path, name: str, prefix: str, payload: dict[str, Any]) -> Path:
    """Save ``payload`` atomically as ``name`` in the first writable :func:`cache_dirs`
    folder, then remove that folder's other ``<prefix>-*.pt`` files (stale file lists);
    OSError when neither folder can be written."""
    errors = []
    for folder in cache_dirs(root):
        try:
            path = atomic_torch_save(payload, folder / name)
        except (OSError, ValueError) as error:  # read-only, full, or a file in the way
            errors.append(f"{folder}: {error}")
            continue
        for old in folder.glob(f"{prefix}-*.pt"):
            if old.name != name:
                old.unlink(missing_ok=True)
        return path
    raise OSError("; ".join(errors))
