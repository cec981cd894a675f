"""Cost analysis: parameters and MACs (the cost issue extends this package)."""

from leanconv.cost.counting import count_macs, count_params

__all__ = ["count_macs", "count_params"]
