"""compile_model(): torch.compile with freezing, kept only where it measures faster."""

import pytest
import torch

import leanconv
from leanconv.deploy import CompileReport, compile_model
from leanconv.models import create_model
from tests.helpers import randomize_batchnorms


@pytest.mark.slow
def test_compile_is_exact_and_reports_its_measurements():
    model = randomize_batchnorms(create_model("resnet20_cifar", conv="hetconv:p=4"))
    result = compile_model(model, (2, 3, 32, 32), threads=2, rounds=1)
    assert isinstance(result, tuple) and len(result) == 2
    compiled, report = result
    assert isinstance(report, CompileReport) and not hasattr(compiled, "compile_report")
    assert report.chosen in ("compiled", "folded")
    assert min(report.eager_ms, report.folded_ms, report.compiled_ms) > 0
    assert report.compile_seconds > 0
    faster = min(report.compiled_ms, report.folded_ms)
    assert faster == (report.compiled_ms if report.chosen == "compiled" else report.folded_ms)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(compiled(x), model(x), atol=1e-5)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model": 1}, r"model must be an nn.Module, got int"),
    ({"input_shape": "1x3x32x32"}, r"input_shape='1x3x32x32' is invalid"),
    ({"threads": -2}, r"threads=-2 is invalid"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    args = {"model": torch.nn.Conv2d(3, 3, 1), "input_shape": (1, 3, 8, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        compile_model(args.pop("model"), args.pop("input_shape"), **args)


def test_the_old_name_that_shadowed_the_builtin_is_gone():
    assert leanconv.compile_model is compile_model
    assert not hasattr(leanconv, "compile") and "compile" not in leanconv.__all__
    # leanconv.deploy.compile is the module compile.py, no longer a function
    assert not callable(getattr(leanconv.deploy, "compile", None))
    assert "compile" not in leanconv.deploy.__all__
