"""Deployment: inference folding, compilation and ONNX export with verified parity."""

from leanconv.deploy.batchnorm import FOLD_RULES, register_fold_rule
from leanconv.deploy.fold import FoldError, FoldReport, fold
from leanconv.deploy.folded_hetconv import FoldedHetConv2d

__all__ = ["FOLD_RULES", "FoldError", "FoldReport", "FoldedHetConv2d", "fold",
           "register_fold_rule"]
