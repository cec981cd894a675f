"""Deployment: inference folding, compilation and ONNX export with verified parity."""

from leanconv.deploy.batchnorm import FOLD_RULES, register_fold_rule
from leanconv.deploy.compile import CompileReport, compile_model
from leanconv.deploy.fold import FoldError, FoldReport, fold
from leanconv.deploy.folded_hetconv import FoldedHetConv2d
from leanconv.deploy.onnx_export import ExportError, OnnxExport, export_onnx

__all__ = ["FOLD_RULES", "CompileReport", "ExportError", "FoldError", "FoldReport",
           "FoldedHetConv2d", "OnnxExport", "compile_model", "export_onnx", "fold",
           "register_fold_rule"]
