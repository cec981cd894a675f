"""Argument and input validation: the checks every public function, operator and command of
leanconv runs on what it is given.

Every message names the owner (the function, class or command), the argument, the bad value
and what would be valid, so that a user never has to read a traceback from deep inside torch.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable

import torch


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in ascending order."""
    return [d for d in range(1, n + 1) if n % d == 0]


def check_int(owner: str, name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools rejected), else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {name}={value!r} is invalid; expected an int >= {minimum}")
    return value


def check_choice(owner: str, name: str, value: object, choices: Iterable[object]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    options = list(choices)
    if value not in options:
        valid = ", ".join(repr(c) for c in options)
        raise ValueError(f"{owner}: {name}={value!r} is invalid; choose one of {valid}")


def check_input(owner: str, x: object, channels: int | None) -> None:
    """Raise ValueError unless ``x`` is a 4-d tensor (N, channels, H, W); None: any C.

    Under ``torch.fx`` symbolic tracing (``x`` a Proxy, no concrete shape) there is nothing to
    check: the traced graph is only used on inputs the eager model accepts.
    """
    if isinstance(x, torch.fx.Proxy):
        return
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{owner}: expected a torch.Tensor input, got {type(x).__name__}")
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        expected = "C" if channels is None else channels
        raise ValueError(
            f"{owner}: expected input of shape (N, {expected}, H, W), got {tuple(x.shape)}"
        )


def check_conv_args(
    owner: str, in_channels: object, out_channels: object, kernel_size: object,
    stride: object, dilation: object,
) -> None:
    """Validate the arguments every convolution operator shares."""
    check_int(owner, "in_channels", in_channels)
    check_int(owner, "out_channels", out_channels)
    check_int(owner, "kernel_size", kernel_size)
    check_int(owner, "stride", stride)
    check_int(owner, "dilation", dilation)


def check_divides(owner: str, name: str, value: int, **totals: int) -> None:
    """Raise ValueError unless ``value`` divides every one of ``totals`` (listing valid values)."""
    for total_name, total in totals.items():
        if total % value:
            common = math.gcd(*totals.values())
            where = " and ".join(f"{k}={v}" for k, v in totals.items())
            raise ValueError(
                f"{owner}: {total_name}={total} is not divisible by {name}={value}; "
                f"choose {name} in {{{', '.join(map(str, divisors(common)))}}} (divides {where})"
            )



def check_call(owner: str, fn: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Raise ValueError (listing the accepted keywords) unless ``fn(*args, **kwargs)`` binds."""
    signature = inspect.signature(fn)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        accepted = [
            name for name, param in signature.parameters.items()
            if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD)
        ][len(args):]
        raise ValueError(f"{owner}: {error}; keyword arguments accepted: "
                         f"{', '.join(accepted)}") from None


def check_module(owner: str, name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is an ``nn.Module``."""
    if not isinstance(value, torch.nn.Module):
        raise ValueError(f"{owner}: {name} must be an nn.Module, got {type(value).__name__}")


def check_input_shape(owner: str, input_shape: object) -> tuple[int, ...]:
    """Raise ValueError unless ``input_shape`` is a tuple/list of >= 2 positive ints."""
    if (not isinstance(input_shape, tuple | list) or len(input_shape) < 2
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in input_shape)):
        raise ValueError(f"{owner}: input_shape={input_shape!r} is invalid; expected a tuple of "
                         f"positive ints with the batch first, e.g. (1, 3, 224, 224)")
    return tuple(input_shape)


def check_threads(owner: str, threads: object) -> None:
    """Raise ValueError unless ``threads`` is None or an int >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"{owner}: threads={threads!r} is invalid; expected an int >= 1 or "
                         f"None (torch's current setting)")
