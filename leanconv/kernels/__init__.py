"""Native (C++) kernels, compiled on first use, each with a pure-PyTorch reference path.

:mod:`leanconv.kernels.build` builds and loads the extension; one file per kernel holds its
Python entry point and the reference it is tested against.
"""

from leanconv.kernels.build import native, native_disabled
from leanconv.kernels.mixed_depthwise import (
    mixed_depthwise_conv2d,
    native_applies,
    reference_mixed_depthwise_conv2d,
)

__all__ = [
    "mixed_depthwise_conv2d",
    "native",
    "native_applies",
    "native_disabled",
    "reference_mixed_depthwise_conv2d",
]
