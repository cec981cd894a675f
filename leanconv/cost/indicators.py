"""ShuffleNet V2's practical guidelines as measurable indicators.

N. Ma, X. Zhang, H.-T. Zheng, J. Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", ECCV 2018, arXiv:1807.11164.

* G1, equal channel width minimises memory access: for each 1x1 conv with ``c1`` inputs,
  ``c2`` outputs on ``h x w``, ``MAC = hw(c1 + c2) + c1 c2`` against its lower bound at the
  same FLOPs ``B = hw c1 c2``: ``2 sqrt(hw B) + B / hw``, reached at c1 = c2. ``efficiency``
  = bound / MAC (1 at 1:1).
* G2, excessive group convolution increases MAC: for each grouped conv,
  ``MAC = hw(c1 + c2) + c1 c2 K^2 / g`` against a dense conv with the same FLOPs and inputs
  (``c2 / g`` outputs): ``penalty`` = MAC / MAC_dense (1 for g = 1, growing with g).
* G3, network fragmentation reduces parallelism: kernels (non-view ops) launched per block.
* G4, element-wise ops are not negligible: their share of all memory access.
"""

from __future__ import annotations

import math
from typing import Any


def g1_row(layer: str, c1: int, c2: int, h: int, w: int) -> dict[str, Any]:
    """One 1x1 conv's G1 numbers (per image)."""
    hw = h * w
    mac = hw * (c1 + c2) + c1 * c2
    flops = hw * c1 * c2
    bound = 2 * math.sqrt(hw * flops) + flops / hw
    return {"layer": layer, "c1": c1, "c2": c2, "ratio": c1 / c2, "hw": hw,
            "memory_access": mac, "lower_bound": bound, "efficiency": bound / mac}


def g2_row(layer: str, c1: int, c2: int, k: int, groups: int, h: int, w: int
           ) -> dict[str, Any]:
    """One grouped conv's G2 numbers (per image)."""
    hw = h * w
    weights = c1 * c2 * k * k // groups
    mac = hw * (c1 + c2) + weights
    dense = hw * (c1 + c2 // groups) + weights
    return {"layer": layer, "groups": groups, "c1": c1, "c2": c2, "kernel": k,
            "memory_access": mac, "dense_equivalent": dense, "penalty": mac / dense}
