"""Writing files safely (temporary file, fsync, rename; never a half-written file), checking
before any work that an output can be written, loading torch files safely and saying what a
file is when it is not the one expected, the user's cache folder, and third-party chatter
kept off leanconv's output."""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import os
import pickletools
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import torch


def _atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """:func:`_replace` with an OSError naming ``path`` (not the temporary file)."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"path={str(target)!r} is a directory; give a file name")
    try:
        return _replace(target, write)
    except OSError as error:
        raise OSError(error.errno, error.strerror or str(error), str(target)) from None


def _replace(target: Path, write: Callable[[BinaryIO], None]) -> Path:
    """``write`` to a temporary file beside ``target`` (folders created), then rename it."""
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


def check_writable(path: str | os.PathLike[str], *, folder: bool, argument: str) -> Path:
    """``path`` as a Path if it can be written as a folder (``folder=True``) or a file: it is
    not a file where a folder is expected nor a folder where a file is, and its first existing
    ancestor (the folders that do not exist yet are created when it is written) is a writable
    folder. Otherwise a ValueError naming ``argument`` (e.g. ``'--out'``), the path, what is
    wrong and what would be valid. Commands call it before any work."""
    target = Path(path)
    shown = f"{argument}={str(target)!r}"
    if folder and target.exists() and not target.is_dir():
        raise ValueError(f"{shown} is a file; give a folder (it is created if missing)")
    if not folder and target.is_dir():
        raise ValueError(f"{shown} is a directory; give a file name")
    ancestor = target if folder else target.parent
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{shown} cannot be written: {str(ancestor)!r} is a file, not a folder; "
                         f"give a path whose existing part is a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{shown} cannot be written: the folder {str(ancestor)!r} is not "
                         f"writable; give a path in a folder you can write")
    return target


def safe_torch_load(path: str | os.PathLike[str], what: str,
                    valid: str = "give a file written by torch.save") -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; ValueError when it is missing or
    unreadable, naming ``what`` the file should be, what the file is instead
    (:func:`describe_file`) and ``valid``, a clause saying what would be valid."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # torch's note on a foreign pickle's protocol
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a damaged or foreign file
        found, hint = describe_file(path)
        advice = f"{valid} ({hint})" if hint else valid
        raise ValueError(f"{what} {str(path)!r} {found}; {advice}") from None


_TORCH_LEGACY = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # its magic number
_HEAD_BYTES = 4096
_PLAIN_MODULES = ("builtins", "collections", "_codecs", "torch", "torch._utils", "torch._tensor")
_UNPICKLED = "leanconv never unpickles Python objects, which can run any code"


def sniff_file(path: str | os.PathLike[str]) -> str:
    """What kind of file ``path`` is, by its first bytes (and its name where they are
    ambiguous): ``'torch'`` (a PyTorch zip or legacy file), ``'zip'`` (another or a damaged
    zip archive), ``'pickle'``, ``'onnx'``, ``'openvino'`` (an IR's .xml),
    ``'openvino-weights'`` (the IR's .bin), ``'text'``, ``'empty'`` or ``'unknown'``."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "torch" if _torch_pickle(path) is not None else "zip"
    if head.startswith(_TORCH_LEGACY):
        return "torch"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    text = _text(head)
    if text is not None and _is_openvino(text):
        return "openvino"
    if path.suffix.lower() == ".bin" and _is_openvino_xml(path.with_suffix(".xml")):
        return "openvino-weights"
    if _is_onnx(path, head):
        return "onnx"
    return "text" if text is not None else "unknown"


def describe_file(path: str | os.PathLike[str]) -> tuple[str, str]:
    """What ``path``, a file that ``torch.load`` refused, is (``'is an ONNX model'``) and what
    to do about it (``''`` when there is nothing particular), for an error message."""
    path = Path(path)
    kind = sniff_file(path)
    if kind in ("onnx", "openvino", "openvino-weights"):
        what = {"onnx": "an ONNX model", "openvino": "an OpenVINO IR model",
                "openvino-weights": "the weights of an OpenVINO IR model"}[kind]
        source = "exported" if kind == "onnx" else "converted"
        return f"is {what}", f"give the PyTorch model it was {source} from"
    if kind in ("torch", "pickle"):
        data = _torch_pickle(path) if kind == "torch" else None
        name = _pickled_class(data if data is not None else _head(path, 1 << 20))
        if kind == "pickle":
            of = f" of a {name}" if name else ""
            return f"is a Python pickle{of}, not a PyTorch file", _UNPICKLED
        if name:
            return (f"holds a pickled {name} (a whole Python object saved by torch.save)",
                    f"{_UNPICKLED}; save model.state_dict() instead, or load the module in "
                    f"Python and pass it to leanconv's functions")
        return "is corrupt or not a torch file (a damaged PyTorch archive)", "write it again"
    if kind == "text":
        first_line = _text(_head(path, _HEAD_BYTES)).strip().splitlines()
        start = first_line[0][:40] if first_line else ""
        return (f"is corrupt or not a torch file: it is plain text, starting {start!r}",
                "a saved model is binary; check the path")
    if kind == "empty":
        return "is empty (cut off while it was written?)", "write it again"
    found = "a zip archive without PyTorch's data.pkl" if kind == "zip" else "an unknown format"
    return f"is corrupt or not a torch file ({found})", ""


def describe_payload(obj: object) -> str:
    """What ``obj``, which ``torch.load`` read from a file that is not the one expected, is
    in words, and how to use it where there is a way: ``'a tensor of shape (3,)'``, ``'a
    state_dict of 62 tensors, a dict without a format tag (...)'``."""
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}, not a model"
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return (f"a state_dict of {len(obj)} tensors, a dict without a format tag (to use it, "
                f"build its model and call model.load_state_dict(torch.load(file)))")
    if isinstance(obj, dict):
        keys = ", ".join(repr(k) for k in list(obj)[:5]) + (", ..." if len(obj) > 5 else "")
        return f"a dict without a format tag (keys: {keys or 'none'})"
    return f"a {type(obj).__name__} without a format tag"


def _text(head: bytes) -> str | None:
    """``head`` decoded as UTF-8 if it is plain text (no NUL bytes; a character cut at the
    end is allowed), else None."""
    if b"\x00" in head:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None


def _is_openvino(text: str) -> bool:
    """Whether ``text``, the start of a file, is an OpenVINO IR (XML with a ``<net`` root)."""
    start = text.lstrip()
    return start.startswith(("<?xml", "<net")) and "<net" in start


def _is_openvino_xml(path: Path) -> bool:
    """Whether ``path`` is an OpenVINO IR's .xml file."""
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        text = _text(handle.read(_HEAD_BYTES))
    return text is not None and _is_openvino(text)


def _is_onnx(path: Path, head: bytes) -> bool:
    """Whether ``path`` is an ONNX model: a protobuf starting with its ``ir_version`` field
    (byte 0x08), named .onnx or, with the ``onnx`` package, parsed as a model with nodes."""
    if head[0] != 0x08:
        return False
    if path.suffix.lower() == ".onnx":
        return True
    try:
        import onnx
    except ImportError:
        return False
    try:
        return len(onnx.load_model(str(path), load_external_data=False).graph.node) > 0
    except Exception:  # protobuf raises its own DecodeError and others for foreign bytes
        return False


def _head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path`` (not the whole file)."""
    with path.open("rb") as handle:
        return handle.read(size)


def _torch_pickle(path: Path) -> bytes | None:
    """The ``data.pkl`` record of the PyTorch zip file ``path``; None if it is none."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            return archive.read(name) if name else None
    except (zipfile.BadZipFile, OSError):
        return None


def _pickled_class(data: bytes) -> str | None:
    """The first class outside plain types and tensors that the pickle stream(s) ``data``
    refer to (``'module.Name'``, read with pickletools, never unpickled); None if none."""
    stream = io.BytesIO(data)
    strings: list[str] = []
    try:
        while stream.tell() < len(data):
            for opcode, arg, _ in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "STACK_GLOBAL"):
                    module, name = (arg.split(" ", 1) if opcode.name == "GLOBAL"
                                    else strings[-2:])
                    if module not in _PLAIN_MODULES:
                        return f"{module}.{name}"
                elif isinstance(arg, str):
                    strings.append(arg)
    except ValueError:  # the end of the pickles (legacy files: storage bytes), or damage
        pass
    return None


def user_cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/leanconv/<parts...>``: where leanconv keeps
    what it can rebuild (image-folder caches of read-only folders, latency tables)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "leanconv", *parts)


@contextlib.contextmanager
def quiet(loggers: Sequence[str], *, stderr: bool = False) -> Iterator[None]:
    """Run a third-party tool that prints progress or logs hints (the ONNX exporter,
    onnxruntime's quantizer, NNCF) with ``loggers`` (``""``: the root logger) raised to
    ERROR and stdout (and, with ``stderr``, stderr) swallowed, so that a command's output
    stays what leanconv says; everything is restored afterwards."""
    handles = [logging.getLogger(name) for name in loggers]
    levels = [handle.level for handle in handles]
    for handle in handles:
        handle.setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            if stderr:
                stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            yield
    finally:
        for handle, level in zip(handles, levels, strict=True):
            handle.setLevel(level)
