"""Padding and output-geometry helpers shared by the operators.

leanconv never uses the string padding ``'same'`` (it breaks ONNX export and strided
convolution): ``padding=None`` resolves to the numeric ``dilation * (k - 1) // 2``, which
keeps the spatial size at stride 1 for odd kernels.
"""

from __future__ import annotations

import torch

from leanconv._validate import check_int


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """The 'same'-style numeric padding ``dilation * (kernel_size - 1) // 2``."""
    return dilation * (kernel_size - 1) // 2


def resolve_padding(owner: str, padding: int | None, kernel_size: int, dilation: int) -> int:
    """``None`` becomes :func:`get_padding`; an int >= 0 is kept; anything else is an error."""
    if padding is None:
        return get_padding(kernel_size, dilation)
    if isinstance(padding, str):
        raise ValueError(
            f"{owner}: padding={padding!r} is invalid; use None (numeric 'same'-style "
            f"padding) or an int >= 0 (string padding breaks strided convs and ONNX export)"
        )
    return check_int(owner, "padding", padding, minimum=0)


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    """Spatial output size of a convolution: ``floor((size + 2p - d(k-1) - 1) / s) + 1``."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _centre(kernel_size: int, padding: int, dilation: int) -> int:
    return dilation * ((kernel_size - 1) // 2) - padding


def centre_offset(owner: str, kernel_size: int, padding: int, dilation: int) -> int:
    """Input index of the centre tap of output pixel 0: ``d * (k - 1) / 2 - padding``.

    Operators that add a 1x1 path or an identity copy to a KxK path (HetConv, CompConv) read
    the input at the KxK kernel's centre tap, so both paths see the same pixel. That needs the
    centre tap inside the unpadded input, i.e. ``padding <= d * (k - 1) / 2``, and an odd
    ``k`` (an even kernel has no centre tap).
    """
    if kernel_size % 2 == 0:
        raise ValueError(
            f"{owner}: kernel_size={kernel_size} is invalid; expected an odd kernel size "
            f"(its 1x1/identity path sits at the kernel's centre tap)"
        )
    offset = _centre(kernel_size, padding, dilation)
    if offset < 0:
        raise ValueError(
            f"{owner}: padding={padding} is invalid for kernel_size={kernel_size}, "
            f"dilation={dilation}; expected 0 <= padding <= {offset + padding}"
        )
    return offset


def _output_hw(
    x: torch.Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> tuple[int, int]:
    return (
        conv_output_size(x.shape[-2], kernel_size, stride, padding, dilation),
        conv_output_size(x.shape[-1], kernel_size, stride, padding, dilation),
    )


def centre_taps(
    x: torch.Tensor, kernel_size: int, stride: int, padding: int, dilation: int
) -> torch.Tensor:
    """The input pixels under the centre tap of each output pixel of a KxK conv (a view).

    What a 1x1 conv with the same stride would read, aligned with the KxK conv's output grid:
    ``x[..., off::stride, off::stride]`` cropped to the conv's output size. Callers validate
    the geometry with :func:`centre_offset` at construction.
    """
    offset = _centre(kernel_size, padding, dilation)
    height, width = _output_hw(x, kernel_size, stride, padding, dilation)
    if offset == 0 and stride == 1 and (height, width) == tuple(x.shape[-2:]):
        return x
    return x[..., offset::stride, offset::stride][..., :height, :width]
