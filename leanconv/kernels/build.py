"""Compile and load leanconv's C++ kernels (``*.cpp`` beside this file) on first use.

The extension is built with ``torch.utils.cpp_extension.load`` (ninja, from the ``ninja``
package if it is not on PATH, and the system's C++ compiler) for the machine it runs on
(``-O3 -march=native``), with OpenMP so that ``at::parallel_for`` runs in parallel; the library
asks for ``libgomp.so.1``, the name of the OpenMP runtime torch has already loaded, so both
share one thread pool and the kernels follow ``torch.set_num_threads``. The build directory
name holds a hash of the sources, the flags, the torch version and the CPU's feature flags, so
a changed source or another CPU builds anew instead of loading an incompatible library. The
first build takes about 30 s on 2 cores and is cached by torch (``TORCH_EXTENSIONS_DIR``,
default ``~/.cache/torch_extensions``).

Where the build fails (no compiler, no headers) or ``LEANCONV_NATIVE=0`` is set, :func:`native`
returns None once and for all, with one warning giving the reason; every caller then uses its
pure-PyTorch reference path, which the tests compare the kernels against.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType

import torch

SOURCES = (Path(__file__).with_name("mixed_depthwise.cpp"),)
CFLAGS = ("-O3", "-march=native", "-fopenmp")
ENV_SWITCH = "LEANCONV_NATIVE"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_name() -> str:
    """Extension name: ``leanconv_native_`` + hash of sources, flags, torch and CPU."""
    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(source.read_bytes())
    digest.update(" ".join(CFLAGS).encode())
    digest.update(torch.__version__.encode())
    digest.update(_cpu_flags().encode())
    return f"leanconv_native_{digest.hexdigest()[:12]}"


def _put_ninja_on_path() -> None:
    """torch runs ``ninja`` from PATH; the ``ninja`` wheel's copy sits in a venv's bin, which
    is not on PATH when the venv's python is run without activating it."""
    if shutil.which("ninja") is None:
        try:
            import ninja
        except ImportError:
            return
        os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, os.environ.get("PATH", "")])


def native_disabled() -> bool:
    """True when ``LEANCONV_NATIVE`` is set to 0/false/no/off."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() in {"0", "false", "no", "off"}


@cache
def native() -> ModuleType | None:
    """``torch.ops.leanconv`` with its CPU kernels compiled and registered on the first call
    (the ops themselves are defined in :mod:`leanconv.kernels.mixed_depthwise` at import);
    None where the build is unavailable."""
    if native_disabled():
        return None
    from torch.utils import cpp_extension

    _put_ninja_on_path()
    try:
        if not torch._C._dispatch_has_kernel_for_dispatch_key(
                "leanconv::mixed_depthwise_conv2d", "CPU"):
            cpp_extension.load(build_name(), [str(s) for s in SOURCES],
                               extra_cflags=list(CFLAGS), extra_ldflags=["-fopenmp"],
                               is_python_module=False, verbose=False)
        return torch.ops.leanconv
    except Exception as error:  # any build failure means: use the reference paths
        reason = (str(error).strip().splitlines() or [""])[-1]
        warnings.warn(
            f"leanconv: the C++ kernels could not be built ({type(error).__name__}: {reason}); "
            f"using the pure-PyTorch paths. Set {ENV_SWITCH}=0 to silence this.",
            RuntimeWarning, stacklevel=2)
        return None
