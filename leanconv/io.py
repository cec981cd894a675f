"""Writing files safely (temporary file, fsync, rename; never a half-written file), and the
user's cache folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch


def _atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"path={str(target)!r} is a directory; give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide results from other users
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it into place."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    return _atomic_write(path, lambda handle: handle.write(data))


def atomic_torch_save(obj: object, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    return _atomic_write(path, lambda handle: torch.save(obj, handle))


def safe_torch_load(path: str | os.PathLike[str], what: str) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; ValueError (naming ``what`` the file
    should be) when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        first_line = str(error).splitlines()[0][:200] if str(error) else ""
        raise ValueError(f"{what} {str(path)!r} is corrupt or not a torch file "
                         f"({type(error).__name__}: {first_line})") from None


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/leanconv/<parts...>``: where leanconv keeps
    what it can rebuild (image-folder caches of read-only folders, latency tables)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "leanconv", *parts)
